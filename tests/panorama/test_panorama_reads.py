"""Reading registered IPs within what a device accepts: the simulator refuses what the
PAN-OS 10.2/11.1 op schema of `show object registered-ip` refuses, and the client reads a
table past 100,000 IPs (more than paging can reach) network by network, exactly."""

from __future__ import annotations

import ipaddress
import json
import logging
import xml.etree.ElementTree as ET

import pytest
import requests

from aksfw_core.errors import NonRetryable
from aksfw_core.limits import Limits
from aksfw_core.panorama import xmlapi
from aksfw_core.panorama.audit import sync_cluster
from aksfw_core.panorama.client import PanoramaClient, api_key
from aksfw_core.rules.model import Service
from aksfw_core.rules.tags import compute_tags
from aksfw_local.fakes import panorama as fake_panorama
from aksfw_local.fakes.panorama import PanoramaSimulator
from aksfw_local.fakes.server import HttpResponse
from tests.support.panorama import API_KEY, settings_for


def xml_answer(body: str) -> HttpResponse:
    return HttpResponse(200, body.encode(), "application/xml; charset=UTF-8")


def show(query: str) -> str:
    return f"<show><object><registered-ip>{query}</registered-ip></object></show>"


def op(panorama: PanoramaSimulator, cmd: str) -> requests.Response:
    return requests.post(
        f"{panorama.url}/api/",
        data={"type": "op", "cmd": cmd},
        headers={"X-PAN-KEY": API_KEY},
        timeout=10,
    )


def answer(panorama: PanoramaSimulator, query: str) -> ET.Element:
    response = op(panorama, show(query))
    return xmlapi.parse_response(response.status_code, response.content)


def ips_of(root: ET.Element) -> list[str]:
    return [ip for ip, _ in xmlapi.registered_page(root)]


@pytest.mark.parametrize(
    "query",
    [
        "<all/><limit>0</limit>",
        "<all/><limit>501</limit>",
        "<all/><limit>-1</limit>",
        "<all/><limit>ten</limit>",
        "<all/><start-point>0</start-point>",
        "<all/><start-point>100001</start-point>",
        "<all/><limit>5</limit><limit>6</limit>",
        "<all/><ip>10.0.0.1</ip>",
        "<ip>10.0.0.0/8</ip><iprange>10.0.0.1-10.0.0.9</iprange>",
        '<all/><tag><entry name="web"/></tag>',
        '<tag><entry name="web"/></tag><ip>10.0.0.1</ip><iprange>10.0.0.1-10.0.0.2</iprange>',
        "<tag/>",
        '<tag><entry name=""/></tag>',
        "<all/><all/>",
        "<all><option>list</option></all>",
        "<all><verbose/></all>",
        "<all/><filter>x</filter>",
        "<ip>10.0.0.300</ip>",
        "<ip>10.0.0.0/33</ip>",
        "<ip></ip>",
        "<iprange>10.0.0.9-10.0.0.1</iprange>",
        "<iprange>10.0.0.1-2001:db8::1</iprange>",
        "<iprange>10.0.0.1</iprange>",
        "<iprange>10.0.0.1-10.0.0.2-10.0.0.3</iprange>",
    ],
)
def test_a_query_outside_the_schema_is_refused_with_code_17(panorama, query):
    panorama.seed("10.0.0.1", ["web"])
    response = op(panorama, show(query))
    root = ET.fromstring(response.content)
    assert (response.status_code, root.get("status"), root.get("code")) == (200, "error", "17")
    assert "registered-ip" in (root.findtext("msg/line") or "")
    with pytest.raises(NonRetryable, match="code 17"):
        xmlapi.parse_response(response.status_code, response.content)


@pytest.fixture
def table(panorama):
    panorama.seed_many(
        {
            "10.0.0.1": ["web"],
            "10.0.0.2": ["db"],
            "10.0.1.7": ["web", "db"],
            "10.1.0.1": ["web"],
            "192.168.1.1": ["corp"],
            "2001:db8::1": ["web"],
            "2001:db8::ff": ["db"],
            "fd00::1": ["web"],
        }
    )
    return panorama


@pytest.mark.parametrize(
    ("query", "ips"),
    [
        ("<iprange>10.0.0.2-10.1.0.1</iprange>", ["10.0.0.2", "10.0.1.7", "10.1.0.1"]),
        ("<iprange>2001:db8::-2001:db8::1</iprange>", ["2001:db8::1"]),
        ("<ip>10.0.0.0/16</ip>", ["10.0.0.1", "10.0.0.2", "10.0.1.7"]),
        ("<ip>10.0.0.0/8</ip><limit>2</limit><start-point>2</start-point>", ["10.0.0.2", "10.0.1.7"]),
        ("<ip>10.0.1.7</ip>", ["10.0.1.7"]),
        ("<ip>2001:db8::/32</ip>", ["2001:db8::1", "2001:db8::ff"]),
        ("<ip>0.0.0.0/4</ip>", ["10.0.0.1", "10.0.0.2", "10.0.1.7", "10.1.0.1"]),
        ("<ip>10.0.0.0/8</ip><start-point>100000</start-point><limit>1</limit>", []),
        ('<tag><entry name="db"/></tag>', ["10.0.0.2", "10.0.1.7", "2001:db8::ff"]),
        ('<tag><entry name="db"/><entry name="corp"/></tag><ip>10.0.0.0/8</ip>', ["10.0.0.2", "10.0.1.7"]),
        ('<tag><entry name="web"/></tag><iprange>fd00::-fd00::9</iprange>', ["fd00::1"]),
        ("<all/><start-point>6</start-point>", ["2001:db8::1", "2001:db8::ff", "fd00::1"]),
        ("<limit>2</limit>", ["10.0.0.1", "10.0.0.2"]),  # no choice: `all`, as devices read it
    ],
)  # fmt: skip
def test_each_choice_of_the_schema_answers_its_entries(table, query, ips):
    assert ips_of(answer(table, query)) == ips


def test_all_pages_at_most_500_and_counts_everything(panorama):
    panorama.seed_many({str(ipaddress.IPv4Address("10.0.0.0") + i): ["t"] for i in range(1203)})
    assert len(ips_of(answer(panorama, "<all/>"))) == 500  # default limit: 500, not everything
    assert len(ips_of(answer(panorama, "<all/><start-point>1001</start-point>"))) == 203
    counted = answer(panorama, "<all><option>count</option></all>")
    assert xmlapi.registered_count(counted) == 1203 and ips_of(counted) == []
    assert ips_of(answer(panorama, "<all><option>file</option></all>")) == []


# ---------------------------------------------------------------- past 100,000 IPs


def address(base: str, index: int) -> str:
    return str(ipaddress.ip_address(base) + index)


def v4(first: int, index: int) -> str:
    return f"{first}.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}"


def big_table() -> dict[str, set[str]]:
    """120,008 IPs: 108,000 in 10.0.0.0/12 (so 0.0.0.0/4, 10.0.0.0/8 and 10.0.0.0/12 each
    overflow and are split), 8,000 in 172.16.0.0/12, 4,000 IPv6 in two /4s, and aksfw's
    own tags here and there, some beside foreign ones on the same IPs."""
    table = {v4(10, index): {f"corp.{index % 5}"} for index in range(108_000)}
    table |= {v4(172, (16 << 16) + index * 83): {"branch"} for index in range(8_000)}
    table |= {address("2001:db8::", index): {"v6"} for index in range(3_000)}
    table |= {address("fd00::1", index << 64): {"v6.ula"} for index in range(1_000)}
    for ip in ("10.0.0.7", "10.1.165.15", "172.16.3.251", "2001:db8::bb8", "192.0.2.1"):
        table.setdefault(ip, set()).add("aks.c1.web")
    for ip in ("10.0.3.3", "2001:db8::5", "198.51.100.9"):
        table.setdefault(ip, set()).add("aks.c1.gone")
    table["10.0.3.3"].add("aks.c2.web")
    table["192.0.2.2"] = {"aks.c2.web"}
    return table


def assert_within_schema(command: str) -> None:
    """Independently of the simulator: the request is one a device accepts."""
    query = ET.fromstring(command).find("object/registered-ip")
    assert query is not None
    names = [child.tag for child in query]
    assert len(names) == len(set(names)), command
    assert set(names) <= {"all", "ip", "limit", "start-point"}, command
    assert (names.count("all") + names.count("ip")) == 1, command
    if "all" in names:
        options = [(o.tag, o.text) for o in query.find("all")]
        assert options in ([], [("option", "count")]), command
    if "ip" in names:
        ipaddress.ip_network(query.findtext("ip"))  # address/netmask, strict
    assert 1 <= int(query.findtext("limit") or "500") <= 500, command
    assert 1 <= int(query.findtext("start-point") or "1") <= 100_000, command


@pytest.fixture
def large(panorama):
    table = big_table()
    panorama.seed_many(table)
    panorama.reset_calls()
    return table


def test_a_table_past_100000_ips_is_read_exactly_by_networks(client, panorama, large):
    registered = client.registered()
    assert registered == {ip: frozenset(tags) for ip, tags in large.items()}
    commands = [call.command or "" for call in panorama.calls]
    assert {call.type for call in panorama.calls} == {"op"}
    for command in commands:
        assert_within_schema(command)
    networks = {ET.fromstring(c).findtext("object/registered-ip/ip") for c in commands}
    assert {"0.0.0.0/4", "10.0.0.0/8", "10.0.0.0/12", "10.1.0.0/16", "::/4"} <= networks
    # A network of n >= 500 IPs costs a first page, a probe and floor(n / 500) more pages;
    # a smaller one its one page. The count 1; 0.0.0.0/4 2, 10.0.0.0/8 2, 10.0.0.0/12 2,
    # 10.0.0.0/16 (65,536) 133, 10.1.0.0/16 (42,464) 86, 14 + 15 + 15 empty networks
    # beside them; 160.0.0.0/4 (8,000) 18, 2000::/4 (3,001) 8, f000::/4 (1,000) 4; the
    # other 14 IPv4 and 14 IPv6 /4s 1 each.
    assert len(commands) == client.requests_sent == 328
    assert client.requests_sent < Limits().panorama_max_pages


def test_sync_on_a_large_table_removes_only_the_clusters_stale_tags(client, panorama, large):
    wanted = compute_tags(
        "c1",
        [Service("shop", "web", {}, ("10.0.0.7", "10.1.165.15", "172.16.3.251", "2001:db8::bb8", "192.0.2.1"))],
        (),
    )  # fmt: skip
    report = sync_cluster(wanted, client)
    assert report.plan.register == {}
    assert report.plan.unregister == {
        ip: frozenset({"aks.c1.gone"}) for ip in ("10.0.3.3", "2001:db8::5", "198.51.100.9")
    }
    expected = big_table()
    for ip in ("10.0.3.3", "2001:db8::5", "198.51.100.9"):
        expected[ip].discard("aks.c1.gone")
    assert panorama.registered() == {ip: tags for ip, tags in expected.items() if tags}
    assert report.write_requests == 1


# ---------------------------------------------------------------- answers that do not add up


class StaleCount(PanoramaSimulator):
    """Answers `all option count` with `count` (None: with no count at all)."""

    count: int | None = 3

    def _show_registered_ip(self, node, target, vsys) -> HttpResponse:
        if node.find("all/option") is None:
            return super()._show_registered_ip(node, target, vsys)
        inner = "" if self.count is None else f"<count>{self.count}</count>"
        return xml_answer(f'<response status="success"><result>{inner}</result></response>')


@pytest.fixture
def stale_count():
    with StaleCount(api_key=API_KEY) as panorama:
        yield panorama
        assert panorama.errors == []


def registered_queries(panorama: PanoramaSimulator) -> list[ET.Element]:
    queries = []
    for call in panorama.calls:
        query = ET.fromstring(call.command or "").find("object/registered-ip")
        assert query is not None
        queries.append(query)
    return queries


def paged_all(queries: list[ET.Element]) -> list[tuple[int, int]]:
    """(start-point, limit) of each page of `all` (not its count)."""
    return [
        (int(q.findtext("start-point") or "1"), int(q.findtext("limit") or "500"))
        for q in queries
        if q.find("all") is not None and q.find("all/option") is None
    ]


@pytest.mark.parametrize("count_answer", ["none", "refused"])
def test_an_unreadable_count_pages_all_not_networks(panorama, count_answer, caplog):
    panorama.count_answer = count_answer
    table = {v4(10, index): {"t"} for index in range(1_000)} | {"2001:db8::1": {"v6"}}
    panorama.seed_many(table)
    panorama.reset_calls()
    with (
        caplog.at_level(logging.WARNING, logger="aksfw_core.panorama.client"),
        PanoramaClient(settings_for(panorama), api_key(API_KEY)) as client,
    ):
        assert client.registered() == {ip: frozenset(tags) for ip, tags in table.items()}
    queries = registered_queries(panorama)
    for call in panorama.calls:
        assert_within_schema(call.command or "")
    assert [q.find("ip") for q in queries] == [None] * len(queries)  # no network query
    assert queries[0].findtext("all/option") == "count"
    assert paged_all(queries) == [(1, 500), (501, 500), (1001, 500)]
    assert len(queries) == 1 + 3
    # The line a person reads is a sentence; the event keeps its name for queries.
    [record] = [r for r in caplog.records if getattr(r, "event", None)]
    fields = json.loads(record.getMessage())
    assert fields["event"] == "panorama.registered_count_unreadable"
    assert fields["message"].startswith("Panorama did not say how many IPs are registered (")
    assert "reading them all in pages of 500 instead" in fields["message"]


def test_a_table_of_exactly_100000_with_an_unreadable_count_is_read_through_all(
    panorama, monkeypatch
):
    # The device's reach scaled down to 1,000 (client and simulator alike): a table of
    # exactly that many is read whole by `all`; one entry from the last start-point says
    # there is nothing past it.
    monkeypatch.setattr(xmlapi, "REGISTERED_MAX_START_POINT", 1_000)
    monkeypatch.setattr(fake_panorama, "MAX_START_POINT", 1_000)
    panorama.count_answer = "none"
    table = {v4(10, index): {"t"} for index in range(1_000)}
    panorama.seed_many(table)
    panorama.reset_calls()
    with PanoramaClient(settings_for(panorama), api_key(API_KEY)) as client:
        assert client.registered() == {ip: frozenset(tags) for ip, tags in table.items()}
    queries = registered_queries(panorama)
    assert paged_all(queries) == [(1, 500), (501, 500), (1_000, 2)]
    assert len(queries) == 1 + 3
    assert all(q.find("ip") is None for q in queries)


def test_past_100000_with_an_unreadable_count_all_then_networks_read_exactly(panorama, large):
    panorama.count_answer = "none"
    with PanoramaClient(settings_for(panorama), api_key(API_KEY)) as client:
        registered = client.registered()
    assert registered == {ip: frozenset(tags) for ip, tags in large.items()}
    for call in panorama.calls:
        assert_within_schema(call.command or "")
    queries = registered_queries(panorama)
    pages = paged_all(queries)
    # `all` as far as a device pages it (start-points 1 .. 99,501), then two entries from
    # start-point 100,000: more to come, so the table is read by networks after all.
    assert pages == [(1 + 500 * n, 500) for n in range(200)] + [(100_000, 2)]
    by_network = [q.findtext("ip") for q in queries if q.find("ip") is not None]
    assert {"0.0.0.0/4", "10.0.0.0/8", "10.0.0.0/12", "10.1.0.0/16", "::/4"} <= set(by_network)
    # the count, 201 requests of `all`, and the 327 of the read by networks
    assert len(queries) == client.requests_sent == 1 + 201 + 327


def test_a_table_that_outgrew_its_count_is_read_by_networks(stale_count, monkeypatch):
    # The same logic at any size: with the device's paging reach scaled down to 1,000
    # (client and simulator alike), 1,201 IPs outgrow a count of 3 while `all` is paged.
    monkeypatch.setattr(xmlapi, "REGISTERED_MAX_START_POINT", 1_000)
    monkeypatch.setattr(fake_panorama, "MAX_START_POINT", 1_000)
    table = {v4(10, index): {"t"} for index in range(1_200)} | {"2001:db8::1": {"v6"}}
    stale_count.seed_many(table)
    with PanoramaClient(settings_for(stale_count), api_key(API_KEY)) as client:
        assert client.registered() == {ip: frozenset(tags) for ip, tags in table.items()}
    commands = [call.command or "" for call in stale_count.calls]
    starts = [ET.fromstring(c).findtext("object/registered-ip/start-point") for c in commands]
    assert all(int(start or "1") <= 1_000 for start in starts)
    pages = paged_all(registered_queries(stale_count))
    # start-points 1 and 501; the next is out of reach, and two entries from start-point
    # 1,000 say there is more
    assert pages == [(1, 500), (501, 500), (1_000, 2)]
    # 0.0.0.0/4, 10.0.0.0/8 ... 10.0.0.0/20 overflow; 10.0.0.0/20 holds 1,200 IPs
    assert "<ip>10.0.0.0/20</ip>" in "".join(commands)


class Bottomless(PanoramaSimulator):
    """Says every network holds 100,000 IPs or more, down to a single address."""

    def _show_registered_ip(self, node, target, vsys) -> HttpResponse:
        if node.find("all/option") is not None:
            return xml_answer(
                '<response status="success"><result><count>300000</count></result></response>'
            )
        start = int(node.findtext("start-point") or "1")
        entries = "".join(
            f'<entry ip="{address("198.18.0.0", start + i)}"><tag><member>x</member></tag></entry>'
            for i in range(int(node.findtext("limit") or "500"))
        )
        return xml_answer(f'<response status="success"><result>{entries}</result></response>')  # fmt: skip


def test_a_single_address_said_to_overflow_is_refused_not_looped_on():
    with Bottomless(api_key=API_KEY) as panorama:
        with (
            PanoramaClient(settings_for(panorama), api_key(API_KEY)) as client,
            pytest.raises(NonRetryable, match="single address"),
        ):
            client.registered()
        # the count, then a first page and a probe for each of 8 ever smaller networks
        assert len(panorama.calls) == 1 + 2 * 8
        limits = Limits(panorama_max_pages=10)
        with (
            PanoramaClient(settings_for(panorama, limits=limits), api_key(API_KEY)) as client,
            pytest.raises(NonRetryable, match="more than 10 requests"),
        ):
            client.registered()
        assert client.requests_sent == 10


@pytest.mark.parametrize(
    ("count_answer", "expected"),
    [("count", 2), ("none", None)],
)
def test_the_simulator_answers_the_count_as_told(panorama, count_answer, expected):
    panorama.seed_many({"10.0.0.1": {"a"}, "10.0.0.2": {"b"}})
    panorama.count_answer = count_answer
    counted = answer(panorama, "<all><option>count</option></all>")
    assert xmlapi.registered_count(counted) == expected and ips_of(counted) == []
    assert ips_of(answer(panorama, "<all/>")) == ["10.0.0.1", "10.0.0.2"]


def test_the_simulator_can_refuse_the_count_as_an_older_release_would(panorama):
    panorama.count_answer = "refused"
    response = op(panorama, show("<all><option>count</option></all>"))
    with pytest.raises(xmlapi.PanosError, match="code 17") as refused:
        xmlapi.parse_response(response.status_code, response.content)
    assert refused.value.code == xmlapi.CODE_SYNTAX
