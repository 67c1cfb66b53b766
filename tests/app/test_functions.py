"""The Functions app end to end: its handlers (through `get_user_function()`), the queue
host played over Azurite, and the Resource Manager, Kubernetes and Panorama fakes."""

from __future__ import annotations

import base64
import gzip
import inspect
import json
import logging
import os
import secrets
import time

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from aksfw_core import functions
from aksfw_core.config import PanoramaSettings
from aksfw_core.limits import Limits
from aksfw_core.panorama.client import PanoramaClient, api_key
from aksfw_core.pipeline.queues import MessageQueues
from aksfw_core.pipeline.storage import StorageAccount
from aksfw_core.rules.messages import Snapshot, encode
from aksfw_core.rules.plan import TagPlan
from aksfw_local.fakes.kube_api import service
from aksfw_local.fakes.panorama import Fault
from aksfw_local.functions_host import enqueue, poison_messages
from aksfw_local.stack import app_functions
from tests.support.flow import CLUSTER, HANDLERS, NODE_GROUP, SUB, configure
from tests.support.panorama import API_KEY

WEB = {"name": "web", "namespace": "shop", "ips": ["20.0.0.1"], "labels": {"app": "web"}}


def test_event_to_registered(world):
    world.panorama.seed("20.0.0.1", ["corp.keep"])
    world.kube.services = [service(**WEB), service("db", "shop", type="ClusterIP")]
    world.event("lb-write.eventgrid.json")
    world.drain()
    assert world.registered() == {
        "20.0.0.1": {"corp.keep", "aks.aks-prod1.web", "aks.aks-prod1.svc.app.web"}
    }


def test_label_change_service_deletion_and_cluster_deletion(world):
    world.kube.services = [service(**WEB), service("api", "shop", ips=["20.0.0.2"])]
    world.event("cluster-write.eventgrid.json")
    world.drain()
    world.kube.services = [
        service(**{**WEB, "labels": {"app": "web2"}}),
        service("api", "shop", ips=["20.0.0.2"]),
    ]
    world.event("lb-write.eventgrid.json")
    world.drain()
    assert world.registered()["20.0.0.1"] == {"aks.aks-prod1.web", "aks.aks-prod1.svc.app.web2"}
    world.kube.services = [service(**{**WEB, "labels": {"app": "web2"}})]
    world.event("pip-delete.eventgrid.json")
    world.drain()
    assert set(world.registered()) == {"20.0.0.1"}
    world.panorama.seed("20.0.0.1", ["corp.keep"])
    world.arm.remove_cluster(SUB, "rg-prod", "aks-prod1")
    world.event("cluster-delete.eventgrid.json")
    world.drain()
    assert world.registered() == {"20.0.0.1": {"corp.keep"}}
    assert json.loads(world.http("GET", "status").get_body())["clusters"] == []


def test_panorama_down_for_a_while_converges_with_nothing_lost(world):
    world.kube.services = [service(**WEB)]
    world.panorama.inject(Fault.HTTP_503, count=8)  # two deliveries of 4 attempts each
    world.event("lb-write.eventgrid.json")
    world.drain()
    assert world.registered() == {"20.0.0.1": {"aks.aks-prod1.web", "aks.aks-prod1.svc.app.web"}}
    attempts = [r.dequeue_count for r in world.updates.results]
    assert attempts == [1, 2, 3] and world.updates.results[-1].ok
    status = json.loads(world.http("GET", "status").get_body())
    (target,) = status["clusters"][0]["targets"]
    assert target["lastError"] is None and target["ips"] == 1


def test_same_snapshot_twice_and_out_of_order_end_in_the_newest(world):
    def snapshot(version, tags):
        return encode(
            Snapshot(CLUSTER, "aks-prod1", "panorama", version, {"20.0.0.9": frozenset(tags)})
        )

    newer = snapshot(2_000, {"aks.aks-prod1.new"})
    older = snapshot(1_000, {"aks.aks-prod1.old"})
    for body in (newer, newer, older):
        enqueue(world.connection_string, "panorama-updates", body)
    world.drain()
    assert world.registered() == {"20.0.0.9": {"aks.aks-prod1.new"}}
    assert len(world.panorama.write_calls()) == 1


def packed(data: bytes) -> str:
    return json.dumps(
        {"v": 1, "kind": "gzip", "data": base64.b64encode(gzip.compress(data, mtime=0)).decode()}
    )


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[" * 40_000,
        packed(b"[" * 100_000),
        json.dumps({"v": 9, "kind": "snapshot"}),
        json.dumps(
            {
                "v": 1,
                "kind": "snapshot",
                "cluster": CLUSTER,
                "tagName": "aks-prod1",
                "target": "panorama",
                "version": 1,
                "tags": {"20.0.0.1": ["corp.not-ours"]},
            }
        ),
        # One key twice: which value a reader takes is the parser's choice, not the sender's.
        # (valid if the last "tags" won: an empty snapshot of the cluster)
        f'{{"v": 1, "kind": "snapshot", "cluster": "{CLUSTER}", "tagName": "aks-prod1", '
        '"target": "panorama", "version": 1, "tags": {"20.0.0.1": ["corp.not-ours"]}, '
        '"tags": {}}',
    ],
    ids=lambda body: body[:40],
)
def test_malformed_message_goes_to_poison_at_once_with_a_clear_log_line(world, caplog, body):
    caplog.set_level(logging.ERROR)
    enqueue(world.connection_string, "panorama-updates", body)
    world.drain()
    assert poison_messages(world.connection_string, "panorama-updates") == [body]
    assert [r.dequeue_count for r in world.updates.results] == [1]
    assert "message.poisoned" in caplog.text
    assert world.panorama.write_calls() == []


def test_a_message_unpacking_past_the_configured_cap_is_poisoned_at_once(
    world, monkeypatch, caplog
):
    caplog.set_level(logging.ERROR)
    config = json.loads(os.environ["AKSFW_CONFIG"])
    config["limits"] = {"maxMessageBytes": 100_000}
    monkeypatch.setenv("AKSFW_CONFIG", json.dumps(config))
    functions.application.cache_clear()
    bomb = packed(b" " * 100_001)
    enqueue(world.connection_string, "panorama-updates", bomb)
    world.drain()
    assert poison_messages(world.connection_string, "panorama-updates") == [bomb]
    assert [r.dequeue_count for r in world.updates.results] == [1]
    assert "unpacks to more than 100000 bytes" in caplog.text
    assert world.panorama.calls == []


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"[" * 50_000, 400), (b'{"cluster": "' + b"x" * 70_000 + b'"}', 413)],
    ids=["nested too deeply", "too large"],
)
def test_http_resync_refuses_hostile_bodies_with_a_client_error(world, body, status):
    response = world.http("POST", "resync", body)
    assert response.status_code == status
    assert "error" in json.loads(response.get_body())


def state_blobs(connection_string: str) -> list[str]:
    container = BlobServiceClient.from_connection_string(connection_string).get_container_client(
        "aksfw-state"
    )
    if not container.exists():
        return []
    return [blob.name for blob in container.list_blobs(name_starts_with="applied/")]


@pytest.mark.parametrize(
    ("tag_name", "target", "tags"),
    [
        ("evil", "panorama", {"20.0.0.1": frozenset({"aks.evil.web"})}),  # nobody's tag name
        ("aks-prod1", "007000000001", {"20.0.0.1": frozenset({"aks.aks-prod1.web"})}),
    ],
    ids=["unmonitored-tag-name", "unconfigured-serial"],
)
def test_a_forged_snapshot_is_poisoned_at_once_and_touches_nothing(world, tag_name, target, tags):
    world.panorama.seed("20.0.0.1", ["corp.keep"])
    before = {t: world.panorama.registered(target=t) for t in (None, "007000000001")}
    forged = encode(Snapshot(CLUSTER, tag_name, target, time.time_ns(), tags))
    enqueue(world.connection_string, "panorama-updates", forged)
    world.updates.run_until_idle(timeout_s=20)
    # The app moves it to the poison queue itself on the first delivery (no host retries):
    assert [r.dequeue_count for r in world.updates.results] == [1]
    assert poison_messages(world.connection_string, "panorama-updates") == [forged]
    assert world.panorama.write_calls() == []
    assert {t: world.panorama.registered(target=t) for t in before} == before
    assert state_blobs(world.connection_string) == []


def test_unreachable_cluster_keeps_its_tags(world):
    world.kube.services = [service(**WEB)]
    world.event("lb-write.eventgrid.json")
    world.drain()
    before = world.registered()
    world.kube.services = []
    world.kube.inject(500, count=1000)
    world.event("lb-write.eventgrid.json")  # the inline resync fails and is queued
    world.drain()
    assert world.registered() == before
    assert len(poison_messages(world.connection_string, "cluster-resync")) == 1
    assert len(world.panorama.write_calls()) == 1  # only the first, successful sync wrote


def test_timer_fans_out_and_tombstones_a_cluster_no_longer_monitored(world):
    world.kube.services = [service(**WEB)]
    HANDLERS["resync_timer"](TimerRequest())
    world.drain()
    assert "20.0.0.1" in world.registered()
    wanted = world.registered()
    world.arm.add_cluster(
        SUB, "rg-prod", "aks-prod1", tags={"other": "x"}, node_resource_group=NODE_GROUP
    )
    now = [time.time()]
    functions.application().engine.clock.source = lambda: now[0]
    HANDLERS["resync_timer"](TimerRequest())
    world.drain()
    assert world.registered() == wanted  # a grace period first: a tag typo must not empty DAGs
    now[0] += Limits().unmonitored_grace_s - 1
    HANDLERS["resync_timer"](TimerRequest())
    world.drain()
    assert world.registered() == wanted
    now[0] += 2
    HANDLERS["resync_timer"](TimerRequest())
    world.drain()
    assert world.registered() == {}
    assert json.loads(world.http("GET", "status").get_body())["clusters"] == []


def test_http_resync_and_status(world):
    world.kube.services = [service(**WEB)]
    for body, code in [(b"[]", 400), (b"{", 400), (b'{"cluster": 3}', 400), (b'{"clusterr": "x"}', 400),
                       (b'{"cluster": "nope"}', 404)]:  # fmt: skip
        response = world.http("POST", "resync", body)
        assert response.status_code == code, body
        assert "error" in json.loads(response.get_body())
    response = world.http("POST", "resync", b'{"cluster": "aks-prod1"}')
    assert response.status_code == 202
    assert json.loads(response.get_body()) == {"queued": [CLUSTER]}
    assert world.http("POST", "resync", b"").status_code == 202
    world.drain()
    status = json.loads(world.http("GET", "status").get_body())
    (cluster,) = status["clusters"]
    assert cluster["id"] == CLUSTER and cluster["monitored"]
    (target,) = cluster["targets"]
    assert (target["target"], target["ips"], target["tags"]) == ("panorama", 1, 2)
    assert target["lastApplied"] is not None
    assert status["queues"] == {"cluster-resync": 0, "panorama-updates": 0,
                                "cluster-resync-poison": 0, "panorama-updates-poison": 0}  # fmt: skip


def test_device_group_targets_fan_out_to_connected_firewalls(world, monkeypatch, azurite):
    world.panorama.disconnect("007000000002")
    configure(monkeypatch, (world.arm, world.panorama, azurite.connection_string),
              panorama={"host": world.panorama.url, "targets": {"deviceGroups": ["dg-east", "dg-west"]}})  # fmt: skip
    world.kube.services = [service(**WEB)]
    world.event("lb-write.eventgrid.json")
    world.drain()
    assert world.registered() == {}
    assert set(world.panorama.registered(target="007000000001")) == {"20.0.0.1"}
    assert world.panorama.registered(target="007000000002") == {}


def test_unchanged_resync_queues_no_snapshot(world):
    world.kube.services = [service(**WEB)]
    world.event("lb-write.eventgrid.json")
    world.drain()
    writes = len(world.panorama.write_calls())
    updates = len(world.updates.results)
    world.event("lb-write.eventgrid.json")
    world.drain()
    assert len(world.updates.results) == updates  # nothing was even queued
    assert len(world.panorama.write_calls()) == writes


def test_event_latency_is_bounded_by_the_queue_only(world):
    world.kube.services = [service(**WEB)]
    started = time.monotonic()
    world.event("lb-write.eventgrid.json")
    world.resyncs.run_until_idle(timeout_s=20)
    world.updates.run_until_idle(timeout_s=20)
    assert "20.0.0.1" in world.registered()
    assert time.monotonic() - started < 10  # a bound against hangs; the figure is benchmarked


def test_audit_repairs_drift_on_panorama(world):
    world.kube.services = [service(**WEB)]
    world.event("lb-write.eventgrid.json")
    world.drain()
    wanted = world.registered()
    # Somebody removes one of aksfw's tags by hand:
    with PanoramaClient(PanoramaSettings(url=world.panorama.url), api_key(API_KEY)) as manual:
        manual.apply(TagPlan(unregister={"20.0.0.1": frozenset({"aks.aks-prod1.web"})}))
    assert world.registered()["20.0.0.1"] == {"aks.aks-prod1.svc.app.web"}
    assert world.http("POST", "resync", b"{}").status_code == 202
    world.drain()
    assert world.registered() != wanted  # an ordinary resync trusts the saved state
    assert world.http("POST", "resync", b'{"audit": true}').status_code == 202
    world.drain()
    assert world.registered() == wanted


def test_snapshot_too_large_for_the_queue_travels_as_a_blob_the_timer_cleans_later(world):
    app_queues = MessageQueues(
        StorageAccount.from_environ({"AzureWebJobsStorage": world.connection_string})
    )
    tags = {
        f"10.{i >> 8}.{i & 255}.1": frozenset({f"aks.aks-prod1.{secrets.token_hex(20)}"})
        for i in range(4000)
    }
    big = Snapshot(CLUSTER, "aks-prod1", "panorama", 5, tags)
    assert len(encode(big)) > 48_000
    app_queues.send(big)
    queue = QueueServiceClient.from_connection_string(world.connection_string).get_queue_client(
        "panorama-updates"
    )
    (peeked,) = queue.peek_messages()
    reference = json.loads(base64.b64decode(peeked.content))
    assert (reference["v"], reference["kind"], reference["target"]) == (2, "blob", "panorama")
    world.drain()
    assert len(world.registered()) == 4000
    blobs = BlobServiceClient.from_connection_string(world.connection_string).get_container_client(
        "aksfw-state"
    )

    def payloads():
        return [b.name for b in blobs.list_blobs(name_starts_with="payloads/")]

    assert payloads() == [reference["blob"]]  # others may share it: it stays a while
    app = functions.application()
    now = [time.time()]
    app.engine.clock.source = lambda: now[0]
    HANDLERS["resync_timer"](TimerRequest())
    assert payloads() == [reference["blob"]]
    now[0] += Limits().payload_ttl_s + 60
    HANDLERS["resync_timer"](TimerRequest())
    assert payloads() == []


def test_no_secret_reaches_the_logs(world, caplog):
    caplog.set_level(logging.DEBUG)
    world.kube.services = [service(**WEB)]
    world.panorama.inject(Fault.HTTP_503, count=2)
    world.kube.inject(500, count=1)
    world.event("lb-write.eventgrid.json")
    world.drain()
    world.http("GET", "status")
    assert "20.0.0.1" in world.registered()
    for secret in (API_KEY, "kube-token", world.arm.token):
        assert secret not in caplog.text


def test_an_event_resolves_its_cluster_once(world, monkeypatch):
    app = functions.application()
    looked_up = []
    knowing = app.engine.discovery.inventory_knowing
    monkeypatch.setattr(
        app.engine.discovery, "inventory_knowing", lambda cid: looked_up.append(cid) or knowing(cid)
    )
    world.kube.services = [service("web", "shop", ips=["20.0.0.1"])]
    world.event("lb-write.eventgrid.json")
    assert looked_up == []  # the resync is given the cluster the event resolved to
    world.drain()
    assert "aks.aks-prod1.web" in world.registered()["20.0.0.1"]


def test_every_function_takes_exactly_its_bindings_as_the_python_worker_requires():
    # The worker refuses to load a function whose parameters (apart from `context`) are not
    # its bindings' names: `@app.route` names its binding `req` unless told otherwise.
    for function in app_functions():
        bindings = {b.name for b in function.get_bindings() if b.name != "$return"}
        signature = inspect.signature(function.get_user_function())
        parameters = set(signature.parameters) - {"context"}
        assert parameters == bindings, function.get_function_name()
        context = signature.parameters.get("context")
        assert context is None or context.annotation in (func.Context, "func.Context")
