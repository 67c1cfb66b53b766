"""What the Panorama client refuses to trust: redirects that would carry the key away,
answers that drip, never end or hold a DTD, registered-ip reads that never end, and
addresses that could point somewhere else than they read."""

from __future__ import annotations

import time

import pytest

from aksfw_core import endpoints
from aksfw_core.errors import InputError, NonRetryable
from aksfw_core.limits import Limits
from aksfw_core.panorama import xmlapi
from aksfw_core.panorama.audit import sync_cluster
from aksfw_core.panorama.client import PAGE_SIZE, PanoramaClient, api_key
from aksfw_core.rules.plan import TagPlan
from aksfw_core.rules.tags import ClusterTags
from aksfw_core.transport import DeadlineExceeded, ResponseTooLarge
from aksfw_local.fakes.panorama import Fault, PanoramaSimulator
from tests.support.panorama import API_KEY, FAST_RETRY, settings_for


@pytest.fixture
def elsewhere():
    """Another origin a redirect points at: it must never see a request."""
    with PanoramaSimulator(api_key=API_KEY) as other:
        yield other


@pytest.mark.parametrize("status_fault", [Fault.REDIRECT])
def test_a_redirect_is_refused_and_the_key_never_leaves_for_another_origin(
    panorama, elsewhere, status_fault
):
    panorama.redirect_to = elsewhere.url + "/api/"
    panorama.inject(status_fault, 10)
    with (
        PanoramaClient(settings_for(panorama), api_key(API_KEY)) as client,
        pytest.raises(NonRetryable, match="redirect") as caught,
    ):
        client.registered()
    assert len(panorama.calls) == 1  # not retried: it would redirect again
    assert elsewhere.calls == []
    assert API_KEY not in str(caught.value)


def test_keygen_never_follows_a_redirect_with_the_password(panorama, elsewhere):
    panorama.redirect_to = elsewhere.url + "/api/"
    panorama.inject(Fault.REDIRECT)
    with pytest.raises(NonRetryable, match="redirect"):
        PanoramaClient.keygen(settings_for(panorama), "admin", "admin-pass")
    assert elsewhere.calls == []


def test_a_drip_fed_answer_cannot_stretch_the_total_deadline(panorama):
    # One byte every 0.05 s never trips a 5 s read timeout; the registered-ip answer
    # (about 250 bytes with headers) would take over 12 s. The deadline is 0.5 s a request.
    panorama.seed("10.0.0.1", ["aks.c1.web"])
    panorama.inject(Fault.DRIP, 10)
    limits = Limits(panorama_read_timeout_s=5, panorama_deadline_s=0.5)
    started = time.monotonic()
    with (
        PanoramaClient(settings_for(panorama, limits=limits), api_key(API_KEY)) as client,
        pytest.raises(DeadlineExceeded, match=r"within 0\.5 s"),
    ):
        client.registered()
    assert time.monotonic() - started < 5
    assert len(panorama.calls) == FAST_RETRY.attempts  # transient: retried, then given up


def test_a_drip_fed_write_is_retried_and_lands_once(panorama):
    plan = xmlapi_plan({"10.0.0.9": {"aks.c1.web"}})
    panorama.inject(Fault.DRIP, 1)
    limits = Limits(panorama_read_timeout_s=5, panorama_deadline_s=0.5)
    with PanoramaClient(settings_for(panorama, limits=limits), api_key(API_KEY)) as client:
        result = client.apply(plan)
    assert result.requests == 2
    assert panorama.registered() == {"10.0.0.9": {"aks.c1.web"}}


def test_an_endless_answer_stops_at_the_byte_cap_and_is_not_retried(panorama):
    panorama.inject(Fault.ENDLESS, 10)
    limits = Limits(panorama_max_response_bytes=256 * 1024)
    with (
        PanoramaClient(settings_for(panorama, limits=limits), api_key(API_KEY)) as client,
        pytest.raises(ResponseTooLarge, match="larger than 262144 bytes"),
    ):
        client.registered()
    assert len(panorama.calls) == 1


def test_a_read_past_the_page_cap_stops_and_sync_removes_nothing(panorama):
    for index in range(1100):
        panorama.seed(f"10.1.{index // 250}.{index % 250 + 1}", ["corp.other"])
    panorama.seed("10.9.9.9", ["aks.c1.gone"])
    limits = Limits(panorama_max_pages=2)
    with (
        PanoramaClient(settings_for(panorama, limits=limits), api_key(API_KEY)) as client,
        pytest.raises(NonRetryable, match="more than 2 requests"),
    ):
        sync_cluster(ClusterTags("c1", {}, ()), client)
    assert panorama.registered()["10.9.9.9"] == {"aks.c1.gone"}
    assert [call.type for call in panorama.calls] == ["op", "op"]  # the count and one page


def test_the_default_limits_bound_every_request():
    limits = Limits()
    assert 0 < limits.panorama_deadline_s <= 300
    assert limits.panorama_max_response_bytes <= 64 * 1024 * 1024
    # Room for a 300,000-IP table read network by network: 600 pages and some probes.
    assert limits.panorama_max_pages >= 3 * 300_000 // PAGE_SIZE


LAUGHS = """<?xml version="1.0" encoding="UTF-16"?>
<!DOCTYPE response [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>
<response status="success"><result><entry ip="10.0.0.1"><tag><member>&b;</member></tag></entry></result></response>"""


@pytest.mark.parametrize(
    "body",
    [
        LAUGHS.encode("utf-16"),
        LAUGHS.replace('encoding="UTF-16"', 'encoding="UTF-8"').encode(),
        LAUGHS.replace('encoding="UTF-16"', 'encoding="UTF-16BE"').encode("utf-16-be"),
        b'<!DOCTYPE r SYSTEM "file:///etc/passwd"><response status="success"/>',
    ],
    ids=["utf-16 entity", "utf-8 entity", "utf-16be entity", "external DTD"],
)
def test_xml_with_a_dtd_or_entities_is_refused_whatever_its_encoding(body):
    with pytest.raises(NonRetryable, match="does not answer like a PAN-OS XML API"):
        xmlapi.parse_response(200, body)


def test_plain_utf16_xml_without_a_dtd_still_parses():
    body = '<?xml version="1.0" encoding="UTF-16"?><response status="success"/>'.encode("utf-16")
    assert xmlapi.parse_response(200, body).get("status") == "success"


@pytest.mark.parametrize(
    "text",
    [
        "https://panorama.example.com/api/../elsewhere",
        "https://panorama.example.com/x",
        "https://panorama.example.com\\@evil.example",
        "https://panorama.example.com@evil.example",
        "panorama.example.com:0",
        "https://pano rama.example.com",
        "https://panorama.example.com?x=1",
        "file:///etc/passwd",
        "https://-bad-.example.com",
        "javascript:alert(1)",
    ],
)
def test_addresses_that_could_point_elsewhere_are_refused(text):
    with pytest.raises(InputError):
        endpoints.panorama_url(text)


def xmlapi_plan(tags):
    return TagPlan(register={ip: frozenset(t) for ip, t in tags.items()})
