"""Reading `kubectl get services -A -o json` documents."""

import pytest

from aksfw_core.errors import InputError
from aksfw_core.rules.model import WarningKind
from aksfw_core.rules.services import parse_service_list


def service(name, namespace="default", kind="LoadBalancer", ingress=(), labels=None):
    return {
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {"type": kind},
        "status": {"loadBalancer": {"ingress": list(ingress)}},
    }


def test_keeps_only_loadbalancer_services_with_their_ips():
    document = {
        "kind": "List",
        "items": [
            service("web", ingress=[{"ip": "20.1.1.1"}, {"hostname": "x.example"}]),
            service("internal", kind="ClusterIP"),
            service("v6", ingress=[{"ip": "2001:DB8:0:0::1"}]),
        ],
    }
    parsed = parse_service_list(document)
    assert [(s.name, s.ips) for s in parsed.services] == [
        ("web", ("20.1.1.1",)),
        ("v6", ("2001:db8::1",)),
    ]


def test_service_list_kind_and_missing_items_are_accepted():
    assert parse_service_list({"kind": "ServiceList", "items": None}).services == ()


def test_invalid_ingress_ip_is_skipped_with_a_warning():
    parsed = parse_service_list(
        {
            "kind": "List",
            "items": [service("web", ingress=[{"ip": "999.1.1.1"}, {"ip": "1.2.3.4"}])],
        }
    )
    assert parsed.services[0].ips == ("1.2.3.4",)
    assert [w.kind for w in parsed.warnings] == [WarningKind.INVALID_IP]


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([], "JSON object"),
        ({"kind": "PodList", "items": []}, "kind"),
        ({"kind": "List", "items": {}}, "items"),
        ({"kind": "List", "items": ["x"]}, "not an object"),
        ({"kind": "List", "items": [{"kind": "Pod", "metadata": {"name": "p"}}]}, "kind 'Pod'"),
        ({"kind": "List", "items": [{"metadata": {}}]}, "metadata.name"),
        ({"kind": "List", "items": [{"metadata": {"name": "a", "namespace": 3}}]}, "namespace"),
        (
            {
                "kind": "List",
                "items": [
                    {
                        "metadata": {"name": "a", "labels": {"k": 1}},
                        "spec": {"type": "LoadBalancer"},
                    }
                ],
            },
            "labels",
        ),
        (
            {
                "kind": "List",
                "items": [
                    {
                        "metadata": {"name": "a"},
                        "spec": {"type": "LoadBalancer"},
                        "status": {"loadBalancer": {"ingress": "1.2.3.4"}},
                    }
                ],
            },
            "ingress",
        ),
    ],
)
def test_malformed_document_raises_instead_of_dropping_services(document, reason):
    with pytest.raises(InputError, match=reason):
        parse_service_list(document)
