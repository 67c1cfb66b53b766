"""Reading `kubectl get services -A -o json` documents."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aksfw_core.errors import InputError
from aksfw_core.rules.model import WarningKind
from aksfw_core.rules.services import parse_service_items, parse_service_list, tag_fields


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


# --- tag_fields: what a list keeps of each Service --------------------------------------

BLOAT = {"managedFields": [{"manager": "kubectl", "fieldsV1": {"f:x": "y" * 1000}}]}


def full(name="web", kind="LoadBalancer", **extra):
    item = service(name, "shop", kind, [{"ip": "20.0.0.1", "ipMode": "VIP"}], {"app": name})
    item["metadata"].update(BLOAT, uid="u-1", annotations={"aksfw.io/tags": "pci", "a/b": "c"})
    item["spec"].update(ports=[{"port": 443}], clusterIP="10.0.0.1")
    item["status"]["conditions"] = [{"type": "x", "message": "y" * 1000}]
    item.update(extra)
    return item


READABLE = [
    full(),
    full(kind="ClusterIP"),
    full(kind="ExternalName"),
    {"metadata": {"name": "bare"}, "spec": {"type": "LoadBalancer"}},
    {"metadata": {"name": "no-status"}, "spec": {"type": "LoadBalancer"}, "status": None},
    {"metadata": {"name": "empty-lb"}, "spec": {"type": "LoadBalancer"}, "status": {}},
    {
        "metadata": {"name": "mixed", "labels": None},
        "spec": {"type": "LoadBalancer"},
        "status": {"loadBalancer": {"ingress": [{"hostname": "h"}, {"ip": "x"}, {"ip": 7}]}},
    },
    {"metadata": {"name": "odd"}, "spec": {"type": "NodePort"}, "status": "not read"},
]
MALFORMED = [
    "x",
    None,
    {"kind": "Pod", "metadata": {"name": "p"}},
    {"metadata": "m"},
    {"metadata": {}},
    {"metadata": {"name": "a", "namespace": 3}},
    {"metadata": {"name": "a"}, "spec": "s"},
    {"metadata": {"name": "a", "labels": {"k": 1}}, "spec": {"type": "LoadBalancer"}},
    {"metadata": {"name": "a", "labels": ["k"]}, "spec": {"type": "LoadBalancer"}},
    {"metadata": {"name": "a"}, "spec": {"type": "LoadBalancer"}, "status": []},
    {"metadata": {"name": "a"}, "spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": 1}},
    {
        "metadata": {"name": "a"},
        "spec": {"type": "LoadBalancer"},
        "status": {"loadBalancer": {"ingress": "1.2.3.4"}},
    },
    {
        "metadata": {"name": "a"},
        "spec": {"type": "LoadBalancer"},
        "status": {"loadBalancer": {"ingress": ["1.2.3.4"]}},
    },
]


@pytest.mark.parametrize("item", READABLE, ids=range(len(READABLE)))
def test_a_reduced_service_reads_like_the_whole_object(item):
    assert parse_service_items([tag_fields(item)]) == parse_service_items([item])


@pytest.mark.parametrize("item", MALFORMED, ids=range(len(MALFORMED)))
def test_a_reduced_malformed_service_is_refused_alike(item):
    with pytest.raises(InputError) as whole:
        parse_service_items([item])
    with pytest.raises(InputError) as reduced:
        parse_service_items([tag_fields(item)])
    assert str(reduced.value) == str(whole.value)


def test_a_reduced_service_drops_what_tags_do_not_read():
    assert tag_fields(full()) == {
        "kind": "Service",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "labels": {"app": "web"},
            "annotations": {"aksfw.io/tags": "pci"},
        },
        "spec": {"type": "LoadBalancer"},
        "status": {"loadBalancer": {"ingress": [{"ip": "20.0.0.1"}]}},
    }
    # Another type: only what says which Service it is and that it is not tagged.
    assert tag_fields(full(kind="ClusterIP")) == {
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"type": "ClusterIP"},
    }


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from(
        [
            "",
            "LoadBalancer",
            "ClusterIP",
            "Service",
            "20.0.0.1",
            "2001:DB8::1",
            "x",
            "aksfw.io/tags",
        ]
    )
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["ip", "hostname", "a", "aksfw.io/x"]), inner, max_size=3)
    ),
    max_leaves=8,
)
_items = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(["Service", "Pod"]) | _json,
        "metadata": st.fixed_dictionaries(
            {},
            optional={
                "name": st.sampled_from(["web", ""]) | _json,
                "namespace": st.sampled_from(["shop"]) | _json,
                "labels": st.dictionaries(st.sampled_from(["app", "t"]), st.just("v")) | _json,
                "annotations": _json,
                "uid": _json,
            },
        )
        | _json,
        "spec": st.fixed_dictionaries(
            {}, optional={"type": st.sampled_from(["LoadBalancer", "NodePort"]), "ports": _json}
        )
        | _json,
        "status": st.fixed_dictionaries(
            {},
            optional={
                "loadBalancer": st.fixed_dictionaries(
                    {}, optional={"ingress": st.lists(_json, max_size=3) | _json}
                )
                | _json,
                "conditions": _json,
            },
        )
        | _json,
    },
)


def _read(items):
    try:
        return parse_service_items(items)
    except InputError as error:
        return f"InputError: {error}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_items | _json, max_size=3))
def test_any_list_reads_the_same_reduced(items):
    assert _read([tag_fields(item) for item in items]) == _read(items)
