"""A Service list through the real kubernetes client carries aksfw's annotations, as the
app reads them, and drops every other annotation as the pages arrive."""

from __future__ import annotations

import pytest

from aksfw_core.kube import KubernetesServices
from aksfw_core.rules.services import parse_service_items
from aksfw_local.fakes.kube_api import FakeKubeApi, service


@pytest.fixture
def kube_api():
    with FakeKubeApi(token="cluster-token-abc") as api:
        yield api
    assert api.errors == []


def test_a_list_keeps_aksfw_s_annotations_and_drops_the_others(kube_api, tmp_path):
    annotations = {
        "aksfw.io/tags": "pci, tier1",
        "aksfw.io/ignore": "false",
        "kubectl.kubernetes.io/last-applied-configuration": "{" + "x" * 5000 + "}",
    }
    kube_api.services = [service("web", "shop", ips=["20.0.0.1"], annotations=annotations)]
    kubeconfig = str(kube_api.write_kubeconfig(tmp_path / "kubeconfig"))
    listing = KubernetesServices.from_kubeconfig(kubeconfig)
    try:
        (item,) = listing.list_items()
    finally:
        listing.close()
    assert item["metadata"]["annotations"] == {
        "aksfw.io/tags": "pci, tier1",
        "aksfw.io/ignore": "false",
    }
    (parsed,) = parse_service_items([item]).services
    assert parsed.annotations == {"aksfw.io/tags": "pci, tier1", "aksfw.io/ignore": "false"}
