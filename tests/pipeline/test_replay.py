"""Replaying poisoned messages (`POST /api/replay`): messages poisoned the real way by the
queue triggers over Azurite, the cause fixed, then replayed; what would fail again is
reported and kept."""

from __future__ import annotations

import base64
import json
import secrets
import time
from contextlib import suppress

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient

from aksfw_core import functions
from aksfw_core.limits import Limits
from aksfw_core.pipeline.replay import PoisonReplay
from aksfw_core.rules.messages import ResyncRequest, Snapshot, encode
from aksfw_local.fakes.kube_api import service
from aksfw_local.fakes.panorama import Fault
from aksfw_local.functions_host import enqueue, poison_messages
from tests.support.flow import CLUSTER, SUB
from tests.support.panorama import API_KEY

WEB = {"name": "web", "namespace": "shop", "ips": ["20.0.0.1"], "labels": {"app": "web"}}
WEB_TAGS = {"20.0.0.1": {"aks.aks-prod1.web", "aks.aks-prod1.svc.app.web"}}
GONE = CLUSTER.replace("aks-prod1", "aks-gone")
UPDATES, RESYNCS = "panorama-updates", "cluster-resync"


def replay(world, **body) -> dict:
    response = world.http("POST", "replay", json.dumps(body).encode())
    assert response.status_code == 200, response.get_body()
    return json.loads(response.get_body())


def decisions(report) -> list[tuple[str | None, str, str | None]]:
    """(kind, decision, reason) per message, sorted."""
    return sorted((m["kind"] or "", m["decision"], m["reason"]) for m in report["messages"])


def depth(world, queue: str) -> int:
    with QueueClient.from_connection_string(world.connection_string, queue) as client:
        return int(client.get_queue_properties().approximate_message_count or 0)


def queue_texts(world, queue: str) -> list[str]:
    """What a queue holds, decoded (peeked, left in place)."""
    with QueueClient.from_connection_string(world.connection_string, queue) as client:
        return sorted(base64.b64decode(m.content).decode() for m in client.peek_messages(32))


def snapshot(version: int, tags: dict[str, set[str]], **fields) -> str:
    options = {"cluster_id": CLUSTER, "tag_name": "aks-prod1", "target": "panorama"}
    options.update(fields)
    frozen = {ip: frozenset(t) for ip, t in tags.items()}
    return encode(Snapshot(version=version, tags=frozen, **options))


def refuse_panorama_key(world) -> None:
    world.panorama.api_key = "rotated-on-panorama"


def fix_panorama_key(world) -> None:
    world.panorama.api_key = API_KEY


def test_after_a_refused_credential_is_fixed_the_snapshot_is_replayed_and_the_rest_kept(world):
    world.kube.services = [service(**WEB)]
    refuse_panorama_key(world)
    world.event("lb-write.eventgrid.json")
    enqueue(world.connection_string, UPDATES, "not json")
    unknown = snapshot(time.time_ns(), {"20.0.0.5": {"aks.aks-gone.web"}}, cluster_id=GONE,
                       tag_name="aks-gone")  # fmt: skip
    enqueue(world.connection_string, UPDATES, unknown)
    world.drain()
    # Each was poisoned at once by the app itself: a refused key, not JSON, not monitored.
    assert [r.dequeue_count for r in world.updates.results] == [1, 1, 1]
    assert len(poison_messages(world.connection_string, UPDATES)) == 3
    assert world.registered() == {}
    fix_panorama_key(world)

    before = queue_texts(world, f"{UPDATES}-poison")
    writes = len(world.panorama.write_calls())
    dry = replay(world, dryRun=True)
    assert dry["dryRun"] is True
    assert decisions(dry) == [
        ("", "kept", "malformed"),
        ("snapshot", "kept", "unknown-cluster"),
        ("snapshot", "would replay", None),
    ]
    assert dry["totals"] == {"read": 3, "replayed": 0, "wouldReplay": 1, "kept": 2}
    assert queue_texts(world, f"{UPDATES}-poison") == before  # a dry run changes nothing
    assert (depth(world, UPDATES), depth(world, RESYNCS)) == (0, 0)
    assert len(world.panorama.write_calls()) == writes

    done = replay(world)
    assert decisions(done) == [
        ("", "kept", "malformed"),
        ("snapshot", "kept", "unknown-cluster"),
        ("snapshot", "replayed", None),
    ]
    (replayed,) = [m for m in done["messages"] if m["decision"] == "replayed"]
    assert (replayed["queue"], replayed["cluster"], replayed["target"]) == (
        UPDATES, CLUSTER, "panorama")  # fmt: skip
    (gone,) = [m for m in done["messages"] if m["reason"] == "unknown-cluster"]
    assert gone["cluster"] == GONE and "not monitored" in gone["detail"]
    assert queue_texts(world, f"{UPDATES}-poison") == sorted(["not json", unknown])
    assert depth(world, UPDATES) == 1
    world.drain()
    assert world.registered() == WEB_TAGS
    # The kept ones are visible again at once: the next replay reads them again, and only them.
    again = replay(world)
    assert again["totals"] == {"read": 2, "replayed": 0, "wouldReplay": 0, "kept": 2}
    status = json.loads(world.http("GET", "status").get_body())
    assert status["queues"][f"{UPDATES}-poison"] == 2


def test_snapshots_poisoned_by_the_host_after_a_panorama_outage_are_replayed(world):
    world.kube.services = [service(**WEB)]
    attempts = 4  # the retry policy's, per delivery
    world.panorama.inject(Fault.HTTP_503, count=5 * attempts)  # every delivery fails
    world.event("lb-write.eventgrid.json")
    world.drain()
    assert [r.dequeue_count for r in world.updates.results] == [1, 2, 3, 4, 5]
    assert world.updates.results[-1].poisoned  # moved by the host at maxDequeueCount
    assert world.panorama.pending_faults == []  # Panorama is back
    report = replay(world, queue=UPDATES)
    assert decisions(report) == [("snapshot", "replayed", None)]
    world.drain()
    assert world.registered() == WEB_TAGS
    assert poison_messages(world.connection_string, UPDATES) == []


def test_the_cap_is_honoured_and_the_newest_snapshot_wins_in_any_order(world):
    refuse_panorama_key(world)
    now = time.time_ns()
    for offset, tag in enumerate(["one", "two", "three"]):
        body = snapshot(now + offset, {"20.0.0.9": {f"aks.aks-prod1.{tag}"}})
        enqueue(world.connection_string, UPDATES, body)
    world.drain()
    assert len(poison_messages(world.connection_string, UPDATES)) == 3
    fix_panorama_key(world)
    first = replay(world, max=2)
    assert first["totals"]["read"] == 2 and first["totals"]["replayed"] == 2
    assert first["more"] is True
    assert len(poison_messages(world.connection_string, UPDATES)) == 1
    assert depth(world, UPDATES) == 2
    second = replay(world, max=2)
    assert second["totals"]["replayed"] == 1 and second["more"] is False
    world.drain()
    assert world.registered() == {"20.0.0.9": {"aks.aks-prod1.three"}}


def test_a_concurrent_replay_does_not_move_the_messages_another_one_holds(world, monkeypatch):
    refuse_panorama_key(world)
    now = time.time_ns()
    for offset in range(3):
        enqueue(
            world.connection_string,
            UPDATES,
            snapshot(now + offset, {"20.0.0.9": {"aks.aks-prod1.x"}}),
        )
    world.drain()
    fix_panorama_key(world)
    app = functions.application()
    check, inner = app.engine.applier.check, []

    def check_while_another_replays(snapshot):
        if not inner:  # in the middle of the first replay, a second one runs to its end
            inner.append(app.operations.replay_poisoned().as_json())
        check(snapshot)

    monkeypatch.setattr(app.engine.applier, "check", check_while_another_replays)
    outer = replay(world)
    assert inner[0]["totals"]["read"] == 0  # all three are hidden by the first
    assert outer["totals"]["replayed"] == 3
    assert depth(world, UPDATES) == 3  # each moved once
    assert poison_messages(world.connection_string, UPDATES) == []


def test_a_resync_refused_by_the_cluster_is_replayed_once_its_credential_works(world):
    world.kube.services = [service(**WEB)]
    world.kube.token = "rotated-on-the-cluster"
    world.event("lb-write.eventgrid.json")  # the inline resync fails and is queued
    world.drain()
    assert len(poison_messages(world.connection_string, RESYNCS)) == 1
    world.kube.token = "kube-token"
    report = replay(world, queue=RESYNCS)
    assert decisions(report) == [("resync", "replayed", None)]
    assert report["messages"][0]["cluster"] == CLUSTER
    world.drain()
    assert world.registered() == WEB_TAGS


def test_a_resync_of_a_cluster_gone_since_is_kept(world):
    world.kube.token = "rotated-on-the-cluster"
    world.event("lb-write.eventgrid.json")
    world.drain()
    world.arm.remove_cluster(SUB, "rg-prod", "aks-prod1")
    functions.application().engine.discovery.refresh()
    report = replay(world)
    assert decisions(report) == [("resync", "kept", "unknown-cluster")]
    assert len(poison_messages(world.connection_string, RESYNCS)) == 1


def raw_enqueue(world, queue: str, text: str) -> None:
    with QueueClient.from_connection_string(world.connection_string, queue) as client:
        with suppress(ResourceExistsError):
            client.create_queue()
        client.send_message(text)  # no base64: the host cannot decode it


@pytest.mark.parametrize(
    ("queue", "body", "reason"),
    [
        (UPDATES, json.dumps({"v": 9, "kind": "snapshot"}), "malformed"),
        (UPDATES, encode(ResyncRequest(CLUSTER, "misrouted")), "malformed"),
        (RESYNCS, "<<raw", "malformed"),
        (UPDATES, snapshot(1, {"20.0.0.1": {"corp.not-ours"}}), "refused"),
        (UPDATES, snapshot(1, {"20.0.0.1": {"aks.evil.web"}}, tag_name="evil"), "refused"),
        (UPDATES, snapshot(1, {"20.0.0.1": {"aks.aks-prod1.web"}}, target="007000000001"), "refused"),
        (UPDATES, snapshot(time.time_ns() + 10**13, {}), "refused"),  # version 3 hours ahead
    ],
    ids=["unknown-version", "wrong-queue", "not-base64", "tag-not-owned", "tag-name-not-the-clusters",
         "unconfigured-serial", "version-ahead"],
)  # fmt: skip
def test_a_message_that_would_fail_again_is_reported_and_kept(world, queue, body, reason):
    if body == "<<raw":
        raw_enqueue(world, queue, "not base64 at all!")
    else:
        enqueue(world.connection_string, queue, body)
    world.drain()
    before = queue_texts_raw(world, f"{queue}-poison")
    assert len(before) == 1
    report = replay(world)
    (message,) = report["messages"]
    assert (message["queue"], message["decision"], message["reason"]) == (queue, "kept", reason)
    assert message["detail"]
    assert queue_texts_raw(world, f"{queue}-poison") == before
    assert world.panorama.write_calls() == []


def queue_texts_raw(world, queue: str) -> list[str]:
    with QueueClient.from_connection_string(world.connection_string, queue) as client:
        return sorted(str(m.content) for m in client.peek_messages(32))


def big_snapshot() -> Snapshot:
    tags = {
        f"10.{i >> 8}.{i & 255}.1": frozenset({f"aks.aks-prod1.{secrets.token_hex(20)}"})
        for i in range(4000)
    }
    return Snapshot(CLUSTER, "aks-prod1", "panorama", time.time_ns(), tags)


def test_a_blob_referenced_snapshot_is_kept_once_its_payload_was_cleaned_up(world):
    refuse_panorama_key(world)
    app = functions.application()
    app.engine.queues.send(big_snapshot())  # too large: a reference to a payload blob
    world.drain()
    fix_panorama_key(world)
    assert decisions(replay(world, dryRun=True)) == [("snapshot", "would replay", None)]
    assert app.engine.queues.delete_old_payloads(time.time() + Limits().payload_ttl_s + 60) == 1
    report = replay(world)
    assert decisions(report) == [("snapshot", "kept", "payload-gone")]
    (message,) = report["messages"]
    assert (message["cluster"], message["target"]) == (None, "panorama")
    assert len(poison_messages(world.connection_string, UPDATES)) == 1
    assert world.panorama.write_calls() == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[]", 400), (b"{", 400), (b"[" * 50_000, 400), (b'{"queue": "nope"}', 400),
        (b'{"queue": 3}', 400), (b'{"dryRun": "yes"}', 400), (b'{"max": 0}', 400),
        (b'{"max": 1000000}', 400), (b'{"max": true}', 400), (b'{"max": 1.5}', 400),
        (b'{"maxx": 1}', 400), (b'{"queue": "' + b"x" * 70_000 + b'"}', 413),
    ],
)  # fmt: skip
def test_http_replay_refuses_bad_and_big_bodies(world, body, status):
    enqueue(world.connection_string, UPDATES, "not json")
    world.drain()
    response = world.http("POST", "replay", body)
    assert response.status_code == status
    assert "error" in json.loads(response.get_body())
    assert len(poison_messages(world.connection_string, UPDATES)) == 1


def test_http_replay_of_empty_poison_queues_reports_nothing(world):
    assert replay(world) == {
        "dryRun": False,
        "messages": [],
        "totals": {"read": 0, "replayed": 0, "wouldReplay": 0, "kept": 0},
        "more": False,
    }
    assert world.http("POST", "replay", b"").status_code == 200


def test_a_replay_reads_no_page_once_half_its_hiding_time_has_passed(world):
    enqueue(world.connection_string, UPDATES, "not json")
    world.drain()
    app = functions.application()
    ticks = iter([0.0, 151.0])  # the call starts; then the first page is due 151 s later
    replay_call = PoisonReplay(
        app.engine.queues,
        app.engine.applier,
        lambda cluster_id: None,
        limits=Limits(replay_visibility_timeout_s=300),
        clock=lambda: next(ticks),
    )
    report = replay_call.replay([UPDATES], most=10)
    assert (report.messages, report.more) == ((), True)
    assert len(poison_messages(world.connection_string, UPDATES)) == 1
