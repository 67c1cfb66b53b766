"""uid-message building and XML API response parsing, without a network."""

import ipaddress
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest

from aksfw_core.errors import AuthError, NonRetryable, Retryable
from aksfw_core.panorama import xmlapi
from aksfw_core.rules.plan import TagPlan


def members(command, action):
    root = ET.fromstring(command)
    return {
        entry.get("ip"): {m.text for m in entry.findall("tag/member")}
        for entry in root.findall(f"payload/{action}/entry")
    }


def plan_of(n_ips, tags_per_ip=3, tag_length=20, unregister=0):
    def tags(i):
        return frozenset(f"aks.c1.{i}-{j}".ljust(tag_length, "x") for j in range(tags_per_ip))

    register = {f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}": tags(i) for i in range(n_ips)}
    drop = {f"11.0.{i >> 8 & 255}.{i & 255}": frozenset({"aks.c1.old"}) for i in range(unregister)}
    return TagPlan(register=register, unregister=drop)


def test_batches_hold_at_most_batch_entries_and_cover_the_plan_once():
    plan = plan_of(2500, unregister=300)
    batches = list(xmlapi.uid_batches(plan, batch_entries=1000))
    assert len(batches) == 3
    seen_register, seen_unregister = {}, {}
    for batch in batches:
        reg, unreg = members(batch.command, "register"), members(batch.command, "unregister")
        assert len(reg) + len(unreg) <= 1000
        assert not seen_register.keys() & reg.keys()
        seen_register |= reg
        seen_unregister |= unreg
    assert seen_register == {ip: set(tags) for ip, tags in plan.register.items()}
    assert seen_unregister == {ip: set(tags) for ip, tags in plan.unregister.items()}
    assert sum(b.register_count for b in batches) == plan.register_count
    assert sum(b.unregister_count for b in batches) == plan.unregister_count


def test_unregisters_come_before_registers():
    plan = plan_of(5, unregister=5)
    (batch,) = xmlapi.uid_batches(plan)
    sections = [child.tag for child in ET.fromstring(batch.command).find("payload")]
    assert sections == ["unregister", "register"]


def test_no_request_exceeds_5_mb_even_with_32_long_tags_per_ip():
    plan = plan_of(3000, tags_per_ip=32, tag_length=127)
    batches = list(xmlapi.uid_batches(plan, batch_entries=1000))
    assert len(batches) > 3, "the byte budget, not the entry count, must split these"
    for batch in batches:
        form = urlencode({"type": "user-id", "cmd": batch.command, "target": "007000000012345"})
        assert len(form.encode()) < xmlapi.MAX_REQUEST_BYTES
    assert sum(len(members(b.command, "register")) for b in batches) == 3000


def test_register_carries_the_timeout_unregister_does_not():
    plan = TagPlan(register={"1.1.1.1": frozenset({"t"})}, unregister={"2.2.2.2": frozenset({"u"})})
    (batch,) = xmlapi.uid_batches(plan, tag_timeout_s=3600)
    root = ET.fromstring(batch.command)
    assert root.findtext("version") == "2.0" and root.findtext("type") == "update"
    reg = root.find("payload/register/entry")
    assert reg.find("tag/member").get("timeout") == "3600"
    unreg = root.find("payload/unregister/entry")
    assert unreg.find("tag/member").get("timeout") is None
    (no_timeout,) = xmlapi.uid_batches(plan)
    assert "timeout" not in no_timeout.command


def test_registrations_say_they_are_persistent_unregistrations_say_nothing():
    plan = TagPlan(register={"1.1.1.1": frozenset({"t"})}, unregister={"2.2.2.2": frozenset({"u"})})
    (batch,) = xmlapi.uid_batches(plan)
    root = ET.fromstring(batch.command)
    assert root.find("payload/register/entry").get("persistent") == "1"
    assert root.find("payload/unregister/entry").get("persistent") is None


def test_the_canary_registers_not_persistent_with_its_timeout_and_unregisters_plainly():
    register = ET.fromstring(xmlapi.canary_command("register", "100::1", "aksfw.canary.ab", 3600))
    (entry,) = register.findall("payload/register/entry")
    assert (entry.get("ip"), entry.get("persistent")) == ("100::1", "0")
    (member,) = entry.findall("tag/member")
    assert (member.text, member.get("timeout")) == ("aksfw.canary.ab", "3600")
    assert register.find("payload/unregister") is None
    unregister = ET.fromstring(xmlapi.canary_command("unregister", "100::1", "aksfw.canary.ab", 0))
    (entry,) = unregister.findall("payload/unregister/entry")
    assert entry.get("persistent") is None and entry.find("tag/member").get("timeout") is None


def test_markup_in_tags_and_ips_cannot_inject_xml():
    hostile = '</member></tag></entry><entry ip="6.6.6.6"><tag><member>evil'
    plan = TagPlan(register={'1.1.1.1"><x a="': frozenset({hostile, "a&b<c>"})})
    (batch,) = xmlapi.uid_batches(plan)
    root = ET.fromstring(batch.command)
    entries = root.findall("payload/register/entry")
    assert [e.get("ip") for e in entries] == ['1.1.1.1"><x a="']
    assert {m.text for m in entries[0].findall("tag/member")} == {hostile, "a&b<c>"}


def test_empty_plan_gives_no_batch():
    assert list(xmlapi.uid_batches(TagPlan())) == []


SUCCESS = b'<response status="success"><result><uid-response/></result></response>'
ENTRY_ERRORS = (
    b'<response status="error"><msg><line><uid-response><version>2.0</version><payload>'
    b'<register><entry ip="1.1.1.1" message="tag aks.c1.a already exists, ignore"/>'
    b'<entry ip="1.1.1.2" message="Failed to register ip-tag mapping"/></register>'
    b'<unregister><entry ip="1.1.1.3" message="ip 1.1.1.3 does not exist, ignore unreg"/>'
    b"</unregister></payload></uid-response></line></msg></response>"
)


@pytest.mark.parametrize(
    ("status", "body", "raises"),
    [
        (200, SUCCESS, None),
        (200, ENTRY_ERRORS, None),
        (
            403,
            b'<response status="error" code="403"><result><msg>Invalid</msg></result></response>',
            AuthError,
        ),
        (
            200,
            b'<response status="error" code="403"><msg>Invalid credential</msg></response>',
            AuthError,
        ),
        (401, b"<html>no</html>", AuthError),
        (
            200,
            b'<response status="error" code="22"><msg><line>Session timed out</line></msg></response>',
            Retryable,
        ),
        (200, b'<response status="error" code="5"><msg>Internal error</msg></response>', Retryable),
        (500, b"oops", Retryable),
        (503, b"", Retryable),
        (429, b"", Retryable),
        (200, b'<response status="success"><result><uid-resp', Retryable),
        (200, b"<html><body>proxy error</body></html>", Retryable),
        (200, b"", Retryable),
        (
            200,
            b'<response status="error" code="400"><result><msg>Bad request</msg></result></response>',
            NonRetryable,
        ),
        (
            200,
            b'<response status="error" code="17"><msg><line>invalid</line></msg></response>',
            NonRetryable,
        ),
        (200, b'<!DOCTYPE x [<!ENTITY a "b">]><response status="success"/>', NonRetryable),
    ],
)
def test_response_classification(status, body, raises):
    if raises is None:
        assert xmlapi.parse_response(status, body).tag == "response"
    else:
        with pytest.raises(raises) as caught:
            xmlapi.parse_response(status, body)
        if raises is Retryable:
            assert not isinstance(caught.value, NonRetryable)


def test_retry_after_is_carried_on_the_error():
    with pytest.raises(Retryable) as caught:
        xmlapi.parse_response(503, b"", retry_after=7.0)
    assert caught.value.retry_after == 7.0


def test_entry_messages_tell_benign_from_real_failures():
    messages = xmlapi.entry_messages(xmlapi.parse_response(200, ENTRY_ERRORS))
    assert [(m.action, m.ip, m.benign) for m in messages] == [
        ("register", "1.1.1.1", True),
        ("register", "1.1.1.2", False),
        ("unregister", "1.1.1.3", True),
    ]


def test_registered_page_normalises_ips():
    root = ET.fromstring(
        '<response status="success"><result>'
        '<entry ip="2001:DB8::0:1" from_agent="0" persistent="1"><tag><member>a</member>'
        '<member>b</member></tag></entry><entry ip="1.1.1.1"><tag/></entry><count>2</count>'
        "</result></response>"
    )
    assert xmlapi.registered_page(root) == [
        ("2001:db8::1", frozenset({"a", "b"})),
        ("1.1.1.1", frozenset()),
    ]


def test_registered_ip_command_pages_all_from_one():
    root = ET.fromstring(xmlapi.registered_ip_command(500, 1))
    query = root.find("object/registered-ip")
    assert [child.tag for child in query] == ["all", "limit", "start-point"]
    assert list(query.find("all")) == []
    assert query.findtext("limit") == "500"
    assert query.findtext("start-point") == "1"


@pytest.mark.parametrize(
    ("network", "text"),
    [
        (ipaddress.ip_network("10.0.0.0/8"), "10.0.0.0/8"),
        (ipaddress.ip_network("2001:db8::/32"), "2001:db8::/32"),
        (ipaddress.ip_network("0.0.0.0/4"), "0.0.0.0/4"),
    ],
)
def test_registered_ip_command_reads_one_network(network, text):
    query = ET.fromstring(xmlapi.registered_ip_command(1, 100_000, network)).find(
        "object/registered-ip"
    )
    assert [child.tag for child in query] == ["ip", "limit", "start-point"]
    assert (query.findtext("ip"), query.findtext("limit")) == (text, "1")
    assert query.findtext("start-point") == "100000"


@pytest.mark.parametrize(("limit", "start"), [(0, 1), (501, 1), (500, 0), (500, 100_001)])
def test_registered_ip_command_refuses_what_a_device_refuses(limit, start):
    with pytest.raises(ValueError):
        xmlapi.registered_ip_command(limit, start)


def test_registered_count_command_asks_all_option_count():
    root = ET.fromstring(xmlapi.registered_count_command())
    query = root.find("object/registered-ip")
    assert [child.tag for child in query] == ["all"]
    assert [(o.tag, o.text) for o in query.find("all")] == [("option", "count")]


@pytest.mark.parametrize(
    ("body", "count"),
    [
        ('<response status="success"><result><count>300000</count></result></response>', 300_000),
        ('<response status="success"><result><count> 0 </count></result></response>', 0),
        ('<response status="success"><result/></response>', None),
        ('<response status="success"><result><count>many</count></result></response>', None),
        ('<response status="success"><result><count>-1</count></result></response>', None),
    ],
)
def test_registered_count_reads_the_count_or_nothing(body, count):
    assert xmlapi.registered_count(ET.fromstring(body)) == count
