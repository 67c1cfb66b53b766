"""Every trigger through Microsoft's real Python runtime (`azure-functions-runtime` on Python
3.13): the runtime indexes `function_app.py`, loads each function and converts each input
and return value exactly as it does under the Functions host, and the app then works
against the local stack (Azurite, the Resource Manager and Kubernetes fakes, the Panorama
simulator). The host's queue semantics stay with `QueueTriggerHost`; each of its deliveries
is an invocation through the runtime.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient

from aksfw_core.azure.events import watcher_event
from aksfw_core.pipeline.storage import StorageNames
from aksfw_core.rules.messages import Snapshot, encode
from aksfw_local.fakes.kube_api import service
from aksfw_local.fakes.panorama import Fault
from aksfw_local.functions_host import enqueue, poison_messages
from aksfw_local.runtime import inputs
from aksfw_local.runtime.worker import REPO_ROOT, RuntimeWorker, running_app
from tests.support.flow import CLUSTER
from tests.support.runtime import WEB, WEB_TAGS, sample, settle

SCHEDULE = "0 */7 * * * *"
TRACE_ID, SPAN_ID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
NAMES = StorageNames()

pytestmark = pytest.mark.subprocess  # a Python 3.13 runtime worker per test


@pytest.fixture
def runtime(world):
    """The app in a runtime worker; both queue triggers of `world` invoke it."""
    with running_app(os.environ) as worker:
        world.resyncs.handler = worker.queue_handler("cluster_resync")
        world.updates.handler = worker.queue_handler("panorama_updates")
        yield worker


def peek(world, queue):
    """The JSON documents waiting in `queue` (left there)."""
    with QueueClient.from_connection_string(world.connection_string, queue) as client:
        return [json.loads(base64.b64decode(m.content)) for m in client.peek_messages(32)]


def queued(world, queue):
    """Messages in `queue` now (none if it was never made)."""
    with QueueClient.from_connection_string(world.connection_string, queue) as client:
        try:
            return client.get_queue_properties().approximate_message_count
        except ResourceNotFoundError:
            return 0


# -- indexing and loading -------------------------------------------------------------------


def http(route, method):
    return [
        {"direction": "IN", "type": "httpTrigger", "name": "request", "methods": [method],
         "authLevel": "FUNCTION", "route": route},
        {"direction": "OUT", "type": "http", "name": "$return"},
    ]  # fmt: skip


def queue_trigger(queue):
    return [{"direction": "IN", "type": "queueTrigger", "name": "message", "queueName": queue,
             "connection": "AzureWebJobsStorage"}]  # fmt: skip


EXPECTED_BINDINGS = {
    "resource_event": [{"direction": "IN", "type": "eventGridTrigger", "name": "event"}],
    "resync_timer": [{"direction": "IN", "type": "timerTrigger", "name": "timer",
                      "schedule": SCHEDULE, "runOnStartup": False}],
    # The queues the app writes to are the queues its triggers read.
    "cluster_resync": queue_trigger(NAMES.resync_queue),
    "panorama_updates": queue_trigger(NAMES.updates_queue),
    # The routes the command line's operator client calls, with their methods.
    "resync": http("resync", "POST"),
    "status": http("status", "GET"),
    "replay": http("replay", "POST"),
    "uninstall": http("uninstall", "POST"),
}  # fmt: skip


def test_the_runtime_indexes_every_function_with_its_bindings(world, monkeypatch):
    config = json.loads(os.environ["AKSFW_CONFIG"])
    config["resync"]["schedule"] = SCHEDULE  # the timer's schedule comes from the settings
    monkeypatch.setenv("AKSFW_CONFIG", json.dumps(config))
    with RuntimeWorker(os.environ) as worker:
        assert worker.versions["python"].startswith("3.13.")
        init = worker.init(REPO_ROOT)
        assert init.ok, init.error
        functions = worker.index()
        assert {name: f.bindings for name, f in functions.items()} == EXPECTED_BINDINGS
        for function in functions.values():
            # The typed binding info the host reads beside the raw bindings agrees.
            for binding in function.bindings:
                info = function.binding_info[binding["name"]]
                assert info["type"] == binding["type"]
                assert info.get("direction", "in") == binding["direction"].lower()
            assert function.metadata["script_file"] == "function_app.py"
            loaded = worker.load(function.name)
            assert loaded.ok, (function.name, loaded.error)


# -- Event Grid -----------------------------------------------------------------------------


def test_an_event_grid_schema_event_is_queued_and_reaches_panorama(world, runtime):
    world.panorama.seed("20.0.0.1", ["corp.keep"])
    world.kube.services = [service(**WEB)]
    invocation = runtime.invoke(
        "resource_event", inputs.event_grid(sample("lb-write.eventgrid.json"))
    )
    assert invocation.ok, invocation.error
    assert queued(world, NAMES.resync_queue) >= 1
    settle(world, runtime)
    assert world.registered() == {"20.0.0.1": {"corp.keep", *WEB_TAGS}}
    queue_calls = [name for name, _ in runtime.invocations if name != "resource_event"]
    assert {"cluster_resync", "panorama_updates"} <= set(queue_calls)


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(sample("cluster-write.cloudevent.json"), id="resource manager"),
        pytest.param(watcher_event(CLUSTER, "w-1", datetime.now(UTC)), id="watcher"),
    ],
)
def test_a_cloudevents_schema_event_reaches_panorama(world, runtime, document):
    world.kube.services = [service(**WEB)]
    invocation = runtime.invoke("resource_event", inputs.event_grid(document))
    assert invocation.ok, invocation.error
    assert not invocation.events("event.malformed")
    settle(world, runtime)
    assert world.registered() == {"20.0.0.1": WEB_TAGS}


def test_a_malformed_event_is_logged_and_not_retried(world, runtime):
    document = {**sample("lb-write.eventgrid.json"), "subject": "not a resource id"}
    invocation = runtime.invoke("resource_event", inputs.event_grid(document))
    assert invocation.ok  # a failure would make Event Grid deliver it again
    assert invocation.events("event.malformed")
    assert queued(world, NAMES.resync_queue) == 0


# -- queues ---------------------------------------------------------------------------------


def test_a_failed_delivery_is_retried_by_the_host_with_its_dequeue_count(world, runtime):
    world.kube.services = [service(**WEB)]
    assert runtime.invoke("resync", inputs.http_request("POST", "resync", b"{}")).ok
    world.resyncs.run_until_idle(timeout_s=30)
    world.panorama.inject(Fault.HTTP_503, count=4)  # every attempt of one delivery
    world.updates.run_until_idle(timeout_s=60)
    results = world.updates.results
    assert [(r.dequeue_count, r.ok, r.poisoned) for r in results] == [
        (1, False, False),
        (2, True, False),
    ]
    first, second = (call for name, call in runtime.invocations if name == "panorama_updates")
    assert "503" in first.error
    # The function read the host's metadata: the message's id and its dequeue count.
    (retry,) = first.events("message.retry")
    assert (retry["message_id"], retry["dequeue_count"]) == (results[0].message_id, 1)
    assert second.ok and world.registered() == {"20.0.0.1": WEB_TAGS}


def test_a_message_that_can_never_succeed_is_poisoned_at_once(world, runtime):
    body = encode(Snapshot(CLUSTER, "someone-else", "panorama", 1, {"20.0.0.9": frozenset({"x"})}))
    message_id = enqueue(world.connection_string, NAMES.updates_queue, body)
    world.updates.run_until_idle(timeout_s=30)
    ((name, invocation),) = runtime.invocations
    assert name == "panorama_updates" and invocation.ok
    (poisoned,) = invocation.events("message.poisoned")
    assert (poisoned["message_id"], poisoned["dequeue_count"]) == (message_id, 1)
    assert poison_messages(world.connection_string, NAMES.updates_queue) == [body]
    assert [r.dequeue_count for r in world.updates.results] == [1]
    assert world.registered() == {}


# -- timer ----------------------------------------------------------------------------------


def test_the_timer_resyncs_every_cluster(world, runtime):
    world.kube.services = [service(**WEB)]
    invocation = runtime.invoke("resync_timer", inputs.timer(past_due=True))
    assert invocation.ok, invocation.error
    assert invocation.events("timer.past_due")
    settle(world, runtime)
    assert world.registered() == {"20.0.0.1": WEB_TAGS}


# -- HTTP -----------------------------------------------------------------------------------


def test_a_resync_request_is_answered_and_carried_out(world, runtime):
    world.kube.services = [service(**WEB)]
    call = inputs.http_request("POST", "resync", json.dumps({"cluster": "aks-prod1"}).encode())
    # The host's trace context for the invocation (func.Context.trace_context).
    call = replace(call, trace_context=inputs.trace_parent(TRACE_ID, SPAN_ID))
    invocation = runtime.invoke("resync", call)
    assert invocation.ok, invocation.error
    assert invocation.http_status == 202
    assert invocation.http_headers == {"content-type": "application/json"}
    assert invocation.http_json() == {"queued": [CLUSTER]}
    # What it queued continues the host's trace.
    (message,) = peek(world, NAMES.resync_queue)
    assert message["traceparent"].split("-")[1] == TRACE_ID
    settle(world, runtime)
    assert world.registered() == {"20.0.0.1": WEB_TAGS}


@pytest.mark.parametrize(
    ("route", "method", "body", "status", "answer"),
    [
        ("resync", "POST", b"not json", 400, {"error"}),
        ("resync", "POST", b'{"cluster": "nowhere"}', 404, {"error"}),
        ("status", "GET", b"", 200, {"clusters", "queues"}),
        ("replay", "POST", b'{"dryRun": true}', 200, None),
        ("uninstall", "POST", b'{"dryRun": true}', 200, None),
        ("uninstall", "POST", b"{}", 400, {"error"}),
    ],
)
def test_the_http_functions_answer_through_the_runtime(
    world, runtime, route, method, body, status, answer
):
    invocation = runtime.invoke(route, inputs.http_request(method, route, body))
    assert invocation.ok, invocation.error
    assert invocation.http_status == status
    assert invocation.http_headers == {"content-type": "application/json"}
    document = invocation.http_json()
    assert isinstance(document, dict)
    if answer is not None:
        assert answer <= set(document)


# -- a placeholder specialised to the app (Flex Consumption) --------------------------------


def test_a_placeholder_worker_specialised_by_an_environment_reload_serves_the_app(world, tmp_path):
    placeholder = tmp_path / "placeholder"
    placeholder.mkdir()
    world.kube.services = [service(**WEB)]
    bare = {"PATH": os.environ["PATH"], "FUNCTIONS_WORKER_RUNTIME": "python"}
    with RuntimeWorker(bare) as worker:
        assert worker.init(placeholder).ok
        assert worker.index() == {}  # nothing of the app is there yet
        reload = worker.reload(os.environ, REPO_ROOT)
        assert reload.ok, reload.error
        assert set(worker.index()) == set(EXPECTED_BINDINGS)
        for name in worker.functions:
            assert worker.load(name).ok
        world.resyncs.handler = worker.queue_handler("cluster_resync")
        world.updates.handler = worker.queue_handler("panorama_updates")
        invocation = worker.invoke("resync", inputs.http_request("POST", "resync", b"{}"))
        assert invocation.http_status == 202, invocation.error
        settle(world, worker)
    assert world.registered() == {"20.0.0.1": WEB_TAGS}
