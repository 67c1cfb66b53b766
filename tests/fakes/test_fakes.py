"""Focused tests proving the test fakes (Panorama simulator, Kubernetes API) behave."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
import requests
from kubernetes.client.exceptions import ApiException

from aksfw_local.fakes.kube_api import FakeKubeApi, service
from aksfw_local.fakes.panorama import Fault, PanoramaSimulator
from tests.support import REPO_ROOT

KEY = "test-key"


# ------------------------------------------------------------------ helpers


def uid_message(
    register: dict[str, list[str]] | None = None,
    unregister: dict[str, list[str]] | None = None,
    timeout: int | None = None,
) -> str:
    def section(name: str, entries: dict[str, list[str]]) -> str:
        attr = f' timeout="{timeout}"' if timeout is not None and name == "register" else ""
        body = "".join(
            f'<entry ip="{ip}"><tag>'
            + "".join(f"<member{attr}>{tag}</member>" for tag in tags)
            + "</tag></entry>"
            for ip, tags in entries.items()
        )
        return f"<{name}>{body}</{name}>"

    payload = ""
    if register is not None:
        payload += section("register", register)
    if unregister is not None:
        payload += section("unregister", unregister)
    return (
        "<uid-message><version>2.0</version><type>update</type>"
        f"<payload>{payload}</payload></uid-message>"
    )


def api(sim: PanoramaSimulator, key: str | None = KEY, **params: str) -> requests.Response:
    headers = {"X-PAN-KEY": key} if key is not None else {}
    return requests.post(f"{sim.url}/api/", data=params, headers=headers, timeout=10)


def xml(response: requests.Response) -> ET.Element:
    return ET.fromstring(response.content)


def entry_messages(root: ET.Element, section: str) -> list[tuple[str, str]]:
    return [
        (entry.get("ip", ""), entry.get("message", ""))
        for entry in root.iterfind(f"./msg/line/uid-response/payload/{section}/entry")
    ]


def show_registered(sim: PanoramaSimulator, start: int, limit: int, **params: str) -> ET.Element:
    cmd = (
        "<show><object><registered-ip><all/>"
        f"<limit>{limit}</limit><start-point>{start}</start-point>"
        "</registered-ip></object></show>"
    )
    response = api(sim, type="op", cmd=cmd, **params)
    assert response.status_code == 200
    root = xml(response)
    assert root.get("status") == "success", response.text
    return root


@pytest.fixture
def sim() -> Iterator[PanoramaSimulator]:
    with PanoramaSimulator(firewalls={"0070000001": "dg-east", "0070000002": "dg-west"}) as s:
        yield s
        assert s.errors == []


# ------------------------------------------------------------------ Panorama simulator


def test_keygen_returns_key_and_rejects_bad_credentials(sim: PanoramaSimulator) -> None:
    ok = api(sim, key=None, type="keygen", user="admin", password="admin-pass")
    assert ok.status_code == 200
    assert xml(ok).findtext("./result/key") == KEY

    bad = api(sim, key=None, type="keygen", user="admin", password="nope")
    assert bad.status_code == 403
    root = xml(bad)
    assert (root.get("status"), root.get("code")) == ("error", "403")
    assert root.findtext("./result/msg") == "Invalid Credential"


def test_bad_key_is_403_and_key_location_is_recorded(sim: PanoramaSimulator) -> None:
    cmd = uid_message(register={"10.0.0.1": ["a"]})
    bad = api(sim, key="wrong", type="user-id", cmd=cmd)
    assert bad.status_code == 403
    assert xml(bad).findtext("./result/msg") == "Invalid credentials."
    assert sim.registered() == {}

    in_url = requests.post(
        f"{sim.url}/api/",
        params={"key": KEY},
        data={"type": "op", "cmd": "<show><foo/></show>"},
        timeout=10,
    )
    assert xml(in_url).get("code") == "17"
    assert xml(in_url).findtext("./msg/line") == "show -> foo is unexpected"

    header_call, url_call = sim.calls
    assert (header_call.key_in_header, header_call.key_in_url, header_call.key_in_body) == (
        True,
        False,
        False,
    )
    assert header_call.type == "user-id" and header_call.command == cmd
    assert header_call.body_bytes > len(cmd)
    assert (url_call.key_in_header, url_call.key_in_url, url_call.key_in_body) == (
        False,
        True,
        False,
    )


def test_register_unregister_with_strict_messages(sim: PanoramaSimulator) -> None:
    sim.strict_duplicates = True
    first = api(sim, type="user-id", cmd=uid_message(register={"10.0.0.1": ["a", "b"]}))
    root = xml(first)
    assert root.get("status") == "success"
    assert root.find("./result/uid-response/payload/register") is not None
    assert root.find("./result/uid-response/payload/unregister") is None

    cmd = uid_message(
        register={"10.0.0.1": ["a", "c"], "2001:db8:0:0::1": ["v6"], "10.0.0.300": ["x"]},
        unregister={"10.0.0.1": ["b", "zz"], "10.9.9.9": ["a"]},
    )
    root = xml(api(sim, type="user-id", cmd=cmd))
    assert root.get("status") == "error"
    assert entry_messages(root, "register") == [
        ("10.0.0.1", "tag a already exists, ignore"),
        ("10.0.0.300", "Invalid ip address"),
    ]
    assert entry_messages(root, "unregister") == [
        ("10.0.0.1", "tag zz does not exist, ignore unreg"),
        ("10.9.9.9", "ip 10.9.9.9 does not exist, ignore unreg"),
    ]
    # Entries without messages were applied; the IPv6 address is stored compressed.
    assert sim.registered() == {"10.0.0.1": {"a", "c"}, "2001:db8::1": {"v6"}}

    sim.strict_duplicates = False
    quiet = api(sim, type="user-id", cmd=cmd)
    assert entry_messages(xml(quiet), "register") == [("10.0.0.300", "Invalid ip address")]
    assert entry_messages(xml(quiet), "unregister") == []
    assert [call.type for call in sim.write_calls()] == ["user-id"] * 3


def test_tag_limit_rejected_ips_invalid_tags_and_malformed_xml(sim: PanoramaSimulator) -> None:
    sim.seed("10.0.0.5", [f"t{i}" for i in range(31)])
    sim.reject_ips.add("10.0.0.6")
    cmd = uid_message(
        register={"10.0.0.5": ["new1", "new2"], "10.0.0.6": ["a"], "10.0.0.7": ["", "x" * 128]}
    )
    root = xml(api(sim, type="user-id", cmd=cmd))
    assert entry_messages(root, "register") == [
        (
            "10.0.0.5",
            "Failed to register: ip 10.0.0.5 has reached the maximum number of tags (32)",
        ),
        ("10.0.0.6", "Failed to register ip-tag mapping"),
        ("10.0.0.7", "Invalid tag"),
        ("10.0.0.7", "Invalid tag"),
    ]
    state = sim.registered()
    assert len(state["10.0.0.5"]) == 32 and "new1" in state["10.0.0.5"]
    assert "10.0.0.6" not in state and "10.0.0.7" not in state

    before = sim.registered()
    for bad in ("<uid-message><payload>", "<uid-message><payload><login/></payload></uid-message>"):
        response = api(sim, type="user-id", cmd=bad)
        assert response.status_code == 200
        assert (xml(response).get("status"), xml(response).get("code")) == ("error", "400")
    assert sim.registered() == before


def test_timeouts_expire_against_the_clock(sim: PanoramaSimulator) -> None:
    now = [1000.0]
    sim.clock = lambda: now[0]
    api(sim, type="user-id", cmd=uid_message(register={"10.0.0.1": ["t"]}, timeout=60))
    api(sim, type="user-id", cmd=uid_message(register={"10.0.0.2": ["p"]}))
    assert sim.registered() == {"10.0.0.1": {"t"}, "10.0.0.2": {"p"}}
    now[0] += 61
    assert sim.registered() == {"10.0.0.2": {"p"}}
    assert [e.get("ip") for e in show_registered(sim, 1, 500).iter("entry")] == ["10.0.0.2"]


def test_a_reboot_keeps_persistent_registrations_and_a_clear_keeps_nothing(
    sim: PanoramaSimulator,
) -> None:
    now = [1000.0]
    sim.clock = lambda: now[0]

    def register(ip: str, persistent: str | None, timeout: int = 0, **params: str) -> None:
        attribute = "" if persistent is None else f' persistent="{persistent}"'
        cmd = (
            f"<uid-message><version>2.0</version><type>update</type><payload><register><entry "
            f'ip="{ip}"{attribute}><tag><member timeout="{timeout}">t</member></tag></entry>'
            "</register></payload></uid-message>"
        )
        assert xml(api(sim, type="user-id", cmd=cmd, **params)).get("status") == "success"

    for target in ({}, {"target": "0070000001"}):
        register("10.0.0.1", "1", **target)
        register("10.0.0.2", None, **target)  # persistent unless said otherwise
        register("10.0.0.3", "0", **target)
        register("10.0.0.4", "1", timeout=600, **target)
    sim.reboot()  # Panorama itself
    assert sim.registered() == {"10.0.0.1": {"t"}, "10.0.0.2": {"t"}, "10.0.0.4": {"t"}}
    assert len(sim.registered(target="0070000001")) == 4  # another device: untouched
    now[0] += 601
    assert "10.0.0.4" not in sim.registered()  # a timeout runs on through a reboot
    sim.clear("0070000001")
    assert sim.registered(target="0070000001") == {}
    assert len(sim.registered()) == 2
    sim.clear()
    assert sim.registered() == {}


def test_what_pan_os_refuses_in_a_registration_is_refused(sim: PanoramaSimulator) -> None:
    for entry in (
        '<entry ip="10.0.0.1"><tag><member timeout="2592001">t</member></tag></entry>',
        '<entry ip="10.0.0.1"><tag><member timeout="-1">t</member></tag></entry>',
        '<entry ip="10.0.0.1" persistent="2"><tag><member>t</member></tag></entry>',
        '<entry ip="10.0.0.1" persistent="yes"><tag><member>t</member></tag></entry>',
    ):
        cmd = (
            "<uid-message><version>2.0</version><type>update</type><payload><register>"
            f"{entry}</register></payload></uid-message>"
        )
        root = xml(api(sim, type="user-id", cmd=cmd))
        assert (root.get("status"), root.get("code")) == ("error", "400"), entry
    assert sim.registered() == {}
    longest = uid_message(register={"10.0.0.1": ["t"]}, timeout=2_592_000)  # 30 days
    assert xml(api(sim, type="user-id", cmd=longest)).get("status") == "success"


def test_registered_ip_pages_1203_ips(sim: PanoramaSimulator) -> None:
    ips = [str(ipaddress.IPv4Address("10.1.0.0") + i) for i in range(1203)]
    for batch in range(0, len(ips), 500):
        cmd = uid_message(register={ip: ["web", "prod"] for ip in ips[batch : batch + 500]})
        assert xml(api(sim, type="user-id", cmd=cmd)).get("status") == "success"

    seen: list[str] = []
    counts: list[int] = []
    for start in (1, 501, 1001, 1204):
        root = show_registered(sim, start, 500)
        page = [entry.get("ip", "") for entry in root.iterfind("./result/entry")]
        counts.append(int(root.findtext("./result/count") or "-1"))
        assert counts[-1] == len(page)
        seen.extend(page)
    assert counts == [500, 500, 203, 0]
    assert seen == ips  # sorted numerically (10.1.0.9 before 10.1.0.10)
    tags = [m.text for m in show_registered(sim, 1, 1).iterfind("./result/entry/tag/member")]
    assert tags == ["prod", "web"]

    # a limit above 500 is refused as a device refuses it (code 17); the tag filter works
    cmd = "<show><object><registered-ip><all/><limit>5000</limit></registered-ip></object></show>"
    refused = xml(api(sim, type="op", cmd=cmd))
    assert (refused.get("status"), refused.get("code")) == ("error", "17")
    sim.seed("10.2.0.1", ["db"])
    cmd = (
        '<show><object><registered-ip><tag><entry name="db"/></tag></registered-ip></object></show>'
    )
    assert [e.get("ip") for e in xml(api(sim, type="op", cmd=cmd)).iter("entry")] == ["10.2.0.1"]


def test_target_and_vsys_have_their_own_state(sim: PanoramaSimulator) -> None:
    cmd = uid_message(register={"10.0.0.1": ["fw"]})
    assert xml(api(sim, type="user-id", cmd=cmd, target="0070000001")).get("status") == "success"
    api(sim, type="user-id", cmd=uid_message(register={"10.0.0.2": ["v"]}), vsys="vsys2")
    assert sim.registered() == {}
    assert sim.registered(target="0070000001") == {"10.0.0.1": {"fw"}}
    assert sim.registered(vsys="vsys2") == {"10.0.0.2": {"v"}}
    page = show_registered(sim, 1, 500, target="0070000001")
    assert [e.get("ip") for e in page.iterfind("./result/entry")] == ["10.0.0.1"]

    sim.disconnect("0070000001")
    for serial in ("0070000001", "0099999999"):
        root = xml(api(sim, type="user-id", cmd=cmd, target=serial))
        assert (root.get("status"), root.get("code")) == ("error", "400")
        assert root.findtext("./result/msg") == f"Device {serial} is not connected"

    groups = xml(api(sim, type="op", cmd="<show><devicegroups/></show>"))
    connected = {
        device.findtext("serial"): device.findtext("connected")
        for device in groups.iterfind("./result/devicegroups/entry/devices/entry")
    }
    assert connected == {"0070000001": "no", "0070000002": "yes"}
    assert sim.calls[0].target == "0070000001" and sim.calls[1].vsys == "vsys2"


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        (Fault.HTTP_503, 503),
        (Fault.HTTP_429, 429),
        (Fault.HTTP_500, 500),
        (Fault.SESSION_TIMEOUT, 200),
        (Fault.FORBIDDEN, 403),
        (Fault.TRUNCATED, 200),
        (Fault.NOT_XML, 200),
        (Fault.HTTP_501, 501),
        (Fault.DROP, None),
    ],
)
def test_fault_is_consumed_once_and_changes_nothing(
    sim: PanoramaSimulator, fault: Fault, status: int | None
) -> None:
    sim.seed("10.0.0.1", ["old"])
    sim.retry_after = "7"
    sim.inject(fault)
    cmd = uid_message(register={"10.0.0.1": ["new"]})
    if status is None:
        with pytest.raises(requests.ConnectionError):
            api(sim, type="user-id", cmd=cmd)
    else:
        response = api(sim, type="user-id", cmd=cmd)
        assert response.status_code == status
        if status in (429, 503):
            assert response.headers["Retry-After"] == "7"
        if fault in (Fault.TRUNCATED, Fault.NOT_XML):
            with pytest.raises(ET.ParseError):
                xml(response)
    assert sim.registered() == {"10.0.0.1": {"old"}}
    assert sim.calls[-1].fault is fault

    assert xml(api(sim, type="user-id", cmd=cmd)).get("status") == "success"
    assert sim.registered() == {"10.0.0.1": {"old", "new"}}
    assert sim.calls[-1].fault is None and sim.pending_faults == []


def test_slow_fault_lets_clients_time_out_then_answers(sim: PanoramaSimulator) -> None:
    sim.slow_seconds = 0.5
    sim.inject(Fault.SLOW)
    with pytest.raises(requests.Timeout):
        requests.post(
            f"{sim.url}/api/",
            data={"type": "keygen", "user": "admin", "password": "admin-pass"},
            timeout=0.1,
        )
    ok = api(sim, key=None, type="keygen", user="admin", password="admin-pass")
    assert ok.status_code == 200


def test_tls_simulator_verifies_against_its_ca(tmp_path: Path) -> None:
    with PanoramaSimulator(tls_dir=tmp_path) as tls_sim:
        assert tls_sim.url.startswith("https://127.0.0.1:")
        assert tls_sim.ca_file is not None
        response = requests.post(
            f"{tls_sim.url}/api/",
            data={"type": "keygen", "user": "admin", "password": "admin-pass"},
            verify=str(tls_sim.ca_file),
            timeout=10,
        )
        assert xml(response).findtext("./result/key") == KEY
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{tls_sim.url}/api/", timeout=10)  # system CAs do not trust it


@pytest.mark.subprocess
def test_simulator_runs_as_a_process() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "aksfw_local.fakes.panorama", "--port", "0", "--api-key", "demo"],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdin is not None
        url = json.loads(process.stdout.readline())["url"]
        response = requests.post(
            f"{url}/api/",
            data={"type": "keygen", "user": "admin", "password": "admin-pass"},
            timeout=10,
        )
        assert xml(response).findtext("./result/key") == "demo"
        process.stdin.close()  # end of stdin stops the server
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.subprocess
def test_a_second_simulator_on_the_same_port_says_so_in_one_line() -> None:
    """The README's simulator block pasted twice: the second start is one line and exit 1,
    and the first keeps serving."""
    command = [sys.executable, "-m", "aksfw_local.fakes.panorama", "--api-key", "demo"]
    first = subprocess.Popen(
        [*command, "--port", "0"], cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert first.stdout is not None and first.stdin is not None
        url = json.loads(first.stdout.readline())["url"]
        port = url.rsplit(":", 1)[1]
        second = subprocess.run(
            [*command, "--port", port, "--ignore-stdin"], cwd=REPO_ROOT, capture_output=True,
            text=True, timeout=60, check=False,
        )  # fmt: skip
        assert (second.returncode, second.stdout) == (1, "")
        assert second.stderr == (
            f"aksfw_local.fakes.panorama: port {port} is in use (a simulator still running "
            "from before? Stop it, e.g. `kill %1`, or choose another --port)\n"
        )
        response = requests.post(f"{url}/api/", data={"type": "keygen"}, timeout=10)
        assert response.status_code == 403  # the first still answers
        first.stdin.close()
        assert first.wait(timeout=10) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        if first.stdout is not None:
            first.stdout.close()


def test_a_role_without_a_request_type_is_refused_it_once_the_key_is_accepted(
    sim: PanoramaSimulator,
) -> None:
    sim.role_lacks = {"user-id"}
    refused = api(sim, type="user-id", cmd=uid_message(register={"10.0.0.1": ["a"]}))
    assert refused.status_code == 403 and xml(refused).get("code") == "403"
    assert sim.registered() == {}
    assert api(sim, type="op", cmd="<show><devicegroups/></show>").status_code == 200


# ------------------------------------------------------------------ Kubernetes API fake


@pytest.fixture
def kube() -> Iterator[FakeKubeApi]:
    with FakeKubeApi(token="secret-token") as server:
        server.services = [
            service("web", "apps", ips=["20.1.1.1"], labels={"tier": "front"}),
            service("db", "data", type="ClusterIP"),
            service("api", "apps", ips=["20.1.1.2"], hostnames=["api.example.invalid"]),
            service("edge", "default", ips=["2001:db8::5"]),
            service("metrics", "kube-system", type="ClusterIP"),
        ]
        yield server
        assert server.errors == []


def kube_client(kube: FakeKubeApi, config: Path) -> kubernetes.client.ApiClient:
    kube.write_kubeconfig(config, context="fake")
    return kubernetes.config.new_client_from_config(config_file=str(config), context="fake")


def test_kube_fake_pages_with_the_real_client(kube: FakeKubeApi, tmp_path: Path) -> None:
    api_client = kube_client(kube, tmp_path / "kubeconfig")
    try:
        core = kubernetes.client.CoreV1Api(api_client)
        names: list[str] = []
        token: str | None = None
        pages = 0
        while True:
            result = core.list_service_for_all_namespaces(limit=2, _continue=token)
            pages += 1
            names.extend(f"{s.metadata.namespace}/{s.metadata.name}" for s in result.items)
            token = result.metadata._continue
            if not token:
                break
            assert result.metadata.remaining_item_count == 5 - len(names)
        assert pages == 3
        assert names == ["apps/api", "apps/web", "data/db", "default/edge", "kube-system/metrics"]
        web = core.list_namespaced_service("apps", label_selector="tier=front").items[0]
        assert web.spec.type == "LoadBalancer"
        assert web.status.load_balancer.ingress[0].ip == "20.1.1.1"

        # A fault on page 1 is consumed once; the token still works afterwards.
        first = core.list_service_for_all_namespaces(limit=2)
        kube.inject(500, on_page=1)
        with pytest.raises(ApiException) as failed:
            core.list_service_for_all_namespaces(limit=2, _continue=first.metadata._continue)
        assert failed.value.status == 500
        again = core.list_service_for_all_namespaces(limit=2, _continue=first.metadata._continue)
        assert [s.metadata.name for s in again.items] == ["db", "edge"]

        kube.expire_continue_tokens()
        with pytest.raises(ApiException) as expired:
            core.list_service_for_all_namespaces(limit=2, _continue=first.metadata._continue)
        assert expired.value.status == 410
        assert json.loads(expired.value.body)["reason"] == "Expired"
        assert all(request.had_valid_token for request in kube.requests)
        assert kube.requests[0].query == {"limit": "2"}
    finally:
        api_client.close()


def test_kube_fake_rejects_a_wrong_token(kube: FakeKubeApi, tmp_path: Path) -> None:
    kube.token = "rotated"  # the kubeconfig below still carries the old token
    kube.write_kubeconfig(tmp_path / "kubeconfig")
    kube.token = "secret-token-2"
    api_client = kubernetes.config.new_client_from_config(
        config_file=str(tmp_path / "kubeconfig"), context="fake"
    )
    try:
        with pytest.raises(ApiException) as denied:
            kubernetes.client.CoreV1Api(api_client).list_service_for_all_namespaces(limit=2)
        assert denied.value.status == 401
        body = json.loads(denied.value.body)
        assert (body["kind"], body["reason"], body["code"]) == ("Status", "Unauthorized", 401)
        assert kube.requests[-1].had_valid_token is False
    finally:
        api_client.close()
