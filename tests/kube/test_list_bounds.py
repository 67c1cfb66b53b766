"""The whole Service list is bounded, not only each page: what it keeps (each Service
reduced to what tags read as its page arrives, capped in count and bytes) and how long it
takes (one deadline over every page and retry, each request cut to the time left)."""

from __future__ import annotations

import json
import time
import tracemalloc

import pytest

from aksfw_core.errors import Retryable
from aksfw_core.kube import KubernetesServices, ListDeadlineExceeded
from aksfw_core.limits import Limits
from aksfw_core.retry import RetrySettings
from aksfw_core.rules.services import parse_service_items
from aksfw_core.transport import ResponseTooLarge
from aksfw_local.fakes.kube_api import FakeKubeApi, service

NO_WAIT = RetrySettings(attempts=2, initial_wait_s=0, max_wait_s=0)
KIB = 1024


@pytest.fixture
def kube_api():
    with FakeKubeApi(token="cluster-token-abc") as api:
        yield api
    assert api.errors == []


def listing(api, tmp_path, **limits) -> KubernetesServices:
    kubeconfig = str(api.write_kubeconfig(tmp_path / "kubeconfig"))
    chosen = {"kube_page_size": 1, **limits}
    return KubernetesServices.from_kubeconfig(kubeconfig, retry=NO_WAIT, limits=Limits(**chosen))


def list_requests(api) -> int:
    return sum(1 for r in api.requests if r.path == "/api/v1/services")


def test_each_page_is_reduced_to_what_tags_read_before_the_next_arrives(kube_api, tmp_path):
    # 40 pages of one Service each, each carrying 256 KiB that aksfw does not read
    # (managedFields, kubectl's last-applied annotation, a status condition): 10 MiB served.
    kube_api.services = [
        service(f"s{i:02}", ips=[f"20.0.0.{i + 1}"], labels={"app": f"a{i}"}) for i in range(40)
    ]
    kube_api.item_padding_bytes = 256 * KIB
    source = listing(kube_api, tmp_path)
    tracemalloc.start()
    try:
        items = source.list_items()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    served = 40 * 256 * KIB
    assert list_requests(kube_api) == 40
    assert len(json.dumps(items)) < 40 * 300  # a few hundred bytes a Service
    # A page at a time (the fake's own answer included), never the pages together.
    assert peak < served / 4, f"peak {peak} bytes for {served} bytes served"
    listed = parse_service_items(items).services
    assert [(s.name, s.labels, s.ips) for s in listed][:2] == [
        ("s00", {"app": "a0"}, ("20.0.0.1",)),
        ("s01", {"app": "a1"}, ("20.0.0.2",)),
    ]


def test_a_listed_service_keeps_its_tag_fields_and_aksfw_annotations_only(kube_api, tmp_path):
    kube_api.services = [
        service(
            "web",
            "shop",
            ips=["20.0.0.1"],
            hostnames=["web.example"],
            labels={"app": "web"},
            annotations={"aksfw.io/tags": "pci", "aksfw.io/ignore": "false", "other/x": "y"},
        ),
        service("internal", "shop", type="ClusterIP", labels={"app": "internal"}),
    ]
    kube_api.item_padding_bytes = 4 * KIB
    assert listing(kube_api, tmp_path).list_items() == [
        {"metadata": {"name": "internal", "namespace": "shop"}, "spec": {"type": "ClusterIP"}},
        {
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "labels": {"app": "web"},
                "annotations": {"aksfw.io/tags": "pci", "aksfw.io/ignore": "false"},
            },
            "spec": {"type": "LoadBalancer"},
            "status": {"loadBalancer": {"ingress": [{"ip": "20.0.0.1"}, {}]}},
        },
    ]


def test_bytes_a_service_does_not_need_do_not_count_towards_the_list_cap(kube_api, tmp_path):
    kube_api.services = [service(f"s{i}", ips=[f"20.0.0.{i + 1}"]) for i in range(5)]
    kube_api.item_padding_bytes = 64 * KIB  # 320 KiB served, far over the cap
    items = listing(kube_api, tmp_path, kube_max_list_bytes=4 * KIB).list_items()
    assert len(items) == 5


def test_more_kept_bytes_than_the_cap_stop_the_list_and_are_not_retried(kube_api, tmp_path):
    labels = {f"label-{n}": "v" * 60 for n in range(20)}  # about 1.6 KiB a Service, all read
    kube_api.services = [service(f"s{i}", ips=[f"20.0.0.{i + 1}"], labels=labels) for i in range(8)]
    source = listing(kube_api, tmp_path, kube_page_size=2, kube_max_list_bytes=8 * KIB)
    with pytest.raises(ResponseTooLarge, match=r"more than 8192 bytes.*limits\.kubeMaxListBytes"):
        source.list_items()
    assert list_requests(kube_api) == 3  # stopped on the page that passed it; not retried


def test_more_services_than_the_cap_stop_the_list_and_are_not_retried(kube_api, tmp_path):
    kube_api.services = [service(f"s{i}", ips=[f"20.0.0.{i + 1}"]) for i in range(7)]
    source = listing(kube_api, tmp_path, kube_page_size=2, kube_max_services=5)
    with pytest.raises(ResponseTooLarge, match=r"more than 5 Services \(limits\.kubeMaxServices\)"):
        source.list_items()
    assert list_requests(kube_api) == 3


def test_many_slow_pages_pass_the_list_deadline(kube_api, tmp_path):
    # Each page answers well inside its own deadline; together they would take 6 s.
    kube_api.services = [service(f"s{i}", ips=[f"20.0.0.{i + 1}"]) for i in range(30)]
    kube_api.delay_s = 0.2
    source = listing(kube_api, tmp_path, kube_deadline_s=5, kube_list_deadline_s=1)
    started = time.monotonic()
    with pytest.raises(ListDeadlineExceeded) as raised:
        source.list_items()
    assert time.monotonic() - started < 2
    assert str(raised.value).startswith(
        f"{kube_api.url}: the Service list did not complete within 1 s "
        "(limits.kubeListDeadlineSeconds); "
    )
    assert isinstance(raised.value, Retryable)  # a slow server may recover: the queue retries
    assert 3 <= list_requests(kube_api) <= 6  # one attempt: its time is spent, no retry


def test_the_last_request_cannot_outlive_the_list_deadline(kube_api, tmp_path):
    kube_api.services = [service("s0", ips=["20.0.0.1"])]
    kube_api.delay_s = 3.0  # inside the page's own read timeout and deadline
    source = listing(
        kube_api, tmp_path, kube_read_timeout_s=30, kube_deadline_s=60, kube_list_deadline_s=0.5
    )
    started = time.monotonic()
    with pytest.raises(ListDeadlineExceeded, match=r"within 0\.5 s.*0 pages read"):
        source.list_items()
    assert time.monotonic() - started < 1.5
    assert list_requests(kube_api) == 1


def test_a_retry_gets_only_the_time_the_list_has_left(kube_api, tmp_path):
    kube_api.services = [service("s0", ips=["20.0.0.1"])]
    kube_api.inject(500, count=1)
    kube_api.delay_s = 0.4
    source = listing(kube_api, tmp_path, kube_list_deadline_s=0.6)
    with pytest.raises(ListDeadlineExceeded, match=r"after 2 attempts$"):
        source.list_items()
    assert list_requests(kube_api) == 2


def test_a_list_inside_its_deadline_and_caps_is_complete(kube_api, tmp_path):
    kube_api.services = [service(f"s{i}", ips=[f"20.0.0.{i + 1}"]) for i in range(5)]
    source = listing(
        kube_api, tmp_path, kube_list_deadline_s=30, kube_max_services=5, kube_max_list_bytes=KIB
    )
    assert len(source.list_items()) == 5
    assert source.resource_version == kube_api.resource_version
