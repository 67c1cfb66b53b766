"""Telemetry end to end: an Event Grid event through both queues (Azurite) to the Panorama
simulator, read back from the app's own OpenTelemetry providers (an in-memory metric
reader and span exporter), never from global state."""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from aksfw_core import functions, telemetry
from aksfw_core.app import App
from aksfw_core.panorama.client import PanoramaClient, api_key
from aksfw_core.rules.messages import (
    MAX_TRACESTATE,
    ResyncRequest,
    Snapshot,
    TraceContext,
    decode,
    encode,
    read_origin_time,
    read_trace_context,
)
from aksfw_core.telemetry import Telemetry, entra_credential, stamped
from aksfw_local.fakes.kube_api import service
from aksfw_local.fakes.panorama import Fault
from aksfw_local.functions_host import enqueue, poison_messages
from aksfw_local.stack import EVENTS
from tests.support.flow import CLUSTER, HANDLERS
from tests.support.panorama import API_KEY, settings_for

HOST_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
HOST_TRACEPARENT = f"00-{HOST_TRACE_ID}-00f067aa0ba902b7-01"
"""What the Functions host would give the Event Grid invocation (`context.trace_context`)."""
WEB = {"name": "web", "namespace": "shop", "ips": ["20.0.0.1"], "labels": {"app": "web"}}
API = {"name": "api", "namespace": "shop", "ips": ["20.0.0.2"]}
PANORAMA = {"cluster": CLUSTER, "target": "panorama"}


@dataclass
class Readings:
    """The app under test and what its providers collected."""

    app: App
    metrics: InMemoryMetricReader
    spans: InMemorySpanExporter

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, data point) of every series of one instrument."""
        found = []
        data = self.metrics.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found += [(dict(p.attributes), p) for p in metric.data.data_points]
        return found

    def value(self, name: str, **attributes: str) -> float:
        """The sum (counter) or last value (gauge) of the series with these attributes."""
        matching = [p.value for a, p in self.points(name) if a == attributes]
        assert len(matching) <= 1, matching
        return matching[0] if matching else 0

    def histogram(self, name: str, **attributes: str) -> Any:
        (point,) = [p for a, p in self.points(name) if a == attributes]
        return point

    def finished(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if name in (None, s.name)]


@pytest.fixture
def otel(world, monkeypatch) -> Iterator[Readings]:
    """The app of `world`, built with providers of the test's own."""
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    app = App.from_environ(os.environ, telemetry=Telemetry(meter_provider, tracer_provider))
    monkeypatch.setattr(functions, "application", functools.lru_cache(maxsize=1)(lambda: app))
    yield Readings(app, reader, spans)
    meter_provider.shutdown()
    tracer_provider.shutdown()


def host_context(traceparent: str = HOST_TRACEPARENT) -> Any:
    """What the Python worker passes as `context`, as far as aksfw reads it."""
    return SimpleNamespace(trace_context=SimpleNamespace(trace_parent=traceparent, trace_state=""))


def deliver_event(name: str, *, event_time: float | None = None, context: Any = None) -> None:
    """Call the Event Grid function as the host does, with the event's time and context."""
    document = json.loads((EVENTS / name).read_text())
    HANDLERS["resource_event"](
        func.EventGridEvent(
            id=document["id"], data=document["data"], topic=document["topic"],
            subject=document["subject"], event_type=document["eventType"],
            event_time=None if event_time is None else _datetime(event_time),
            data_version=document.get("dataVersion", ""),
        ),
        context=context,
    )  # fmt: skip


def _datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def pairs(registered: dict[str, set[str]]) -> int:
    return sum(len(tags) for tags in registered.values())


# ------------------------------------------------------------------------------ traces


def test_an_event_is_one_trace_from_event_grid_to_the_panorama_requests(world, otel):
    world.kube.services = [service(**WEB)]
    deliver_event("lb-write.eventgrid.json", context=host_context())
    world.drain()
    assert "20.0.0.1" in world.registered()

    (event,) = otel.finished("aksfw.event")
    (resync,) = otel.finished("aksfw.resync")
    (apply,) = otel.finished("aksfw.apply")
    requests = [s for s in otel.finished() if s.kind is SpanKind.CLIENT]
    assert requests, "no Panorama client span"
    assert {f"{s.context.trace_id:032x}" for s in otel.finished()} == {HOST_TRACE_ID}
    assert event.parent is not None and event.parent.span_id == 0x00F067AA0BA902B7
    assert resync.parent is not None and resync.parent.span_id == event.context.span_id
    assert apply.parent is not None and apply.parent.span_id == resync.context.span_id
    writes = [s for s in requests if s.attributes["aksfw.panorama.request"] == "uid-message"]
    assert writes and all(s.parent.span_id == apply.context.span_id for s in writes)
    for span in requests:
        assert span.name == "POST /api/"
        assert span.attributes["http.request.method"] == "POST"
        assert span.attributes["url.path"] == "/api/"
        assert span.attributes["http.response.status_code"] == 200
    assert resync.attributes["aksfw.cluster"] == CLUSTER
    assert apply.attributes["aksfw.target"] == "panorama"
    assert apply.attributes["aksfw.outcome"] == "applied"


def test_the_message_context_is_the_parent_and_the_host_invocation_a_link(world, otel):
    world.kube.services = [service(**WEB)]
    invocation = f"00-{'1' * 32}-{'2' * 16}-01"
    world.updates.handler = functools.partial(
        HANDLERS["panorama_updates"], context=host_context(invocation)
    )
    deliver_event("lb-write.eventgrid.json", context=host_context())
    world.drain()
    (apply,) = otel.finished("aksfw.apply")
    assert f"{apply.context.trace_id:032x}" == HOST_TRACE_ID
    assert [f"{link.context.trace_id:032x}" for link in apply.links] == ["1" * 32]


def test_a_trigger_without_a_message_context_is_parented_on_the_host_invocation(world, otel):
    HANDLERS["resync_timer"](TimerRequest(), context=host_context())
    world.drain()
    (timer,) = otel.finished("aksfw.timer")
    assert f"{timer.context.trace_id:032x}" == HOST_TRACE_ID
    (resync,) = otel.finished("aksfw.resync")
    assert resync.parent is not None and resync.parent.span_id == timer.context.span_id


@pytest.mark.parametrize(
    "traceparent",
    [
        "00-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-00f067aa0ba902b7-01",
        f"00-{HOST_TRACE_ID}-00f067aa0ba902b7-01" + "x" * 10_000,
        f"00-{'0' * 32}-00f067aa0ba902b7-01",
        ["not", "a", "string"],
    ],
    ids=["not-hex", "oversized", "zero-trace-id", "not-a-string"],
)
def test_a_malformed_traceparent_in_a_message_is_ignored(world, otel, traceparent):
    body = json.loads(
        encode(
            Snapshot(
                CLUSTER,
                "aks-prod1",
                "panorama",
                time.time_ns(),
                {"20.0.0.9": frozenset({"aks.aks-prod1.x"})},
            )
        )
    )
    body |= {"traceparent": traceparent, "tracestate": "k=v", "originTime": "yesterday"}
    enqueue(world.connection_string, "panorama-updates", json.dumps(body))
    world.drain()
    assert world.registered() == {"20.0.0.9": {"aks.aks-prod1.x"}}
    assert poison_messages(world.connection_string, "panorama-updates") == []
    (apply,) = otel.finished("aksfw.apply")
    assert apply.parent is None  # a trace of its own: nothing from the message was trusted
    assert otel.points("aksfw.event.lag") == []  # no origin time: no lag


# ------------------------------------------------------------------------------ metrics


def test_pair_counts_match_the_simulator_and_lag_and_duration_carry_cluster_and_target(world, otel):
    world.kube.services = [service(**WEB), service(**API)]
    deliver_event("lb-write.eventgrid.json", event_time=time.time() - 30)
    world.drain()
    first = pairs(world.registered())
    assert first == 3  # web: service and label tags; api: service tag
    assert otel.value("aksfw.pairs.registered", **PANORAMA) == first
    assert otel.value("aksfw.pairs.held", **PANORAMA) == first

    world.kube.services = [service(**WEB)]
    deliver_event("lb-write.eventgrid.json", event_time=time.time())
    world.drain()
    assert otel.value("aksfw.pairs.unregistered", **PANORAMA) == first - pairs(world.registered())
    assert otel.value("aksfw.pairs.held", **PANORAMA) == pairs(world.registered()) == 2

    lag = otel.histogram("aksfw.event.lag", **PANORAMA)
    assert lag.count == 2
    assert 30 <= lag.max < 60  # measured from the first event's time, carried through both queues
    duration = otel.histogram("aksfw.apply.duration", **PANORAMA, outcome="applied")
    assert duration.count == 2 and duration.sum > 0


def test_an_unchanged_apply_and_a_duplicate_are_not_counted_as_writes(world, otel):
    world.kube.services = [service(**WEB)]
    deliver_event("lb-write.eventgrid.json")
    world.drain()
    held = {ip: frozenset(tags) for ip, tags in world.registered().items()}
    again = encode(Snapshot(CLUSTER, "aks-prod1", "panorama", time.time_ns(), held))
    enqueue(world.connection_string, "panorama-updates", again)  # newer, same tags
    world.drain()
    enqueue(world.connection_string, "panorama-updates", again)  # the same snapshot twice
    world.drain()
    for outcome in ("applied", "unchanged", "skipped"):
        point = otel.histogram("aksfw.apply.duration", **PANORAMA, outcome=outcome)
        assert point.count == 1, outcome
    assert otel.value("aksfw.pairs.registered", **PANORAMA) == 2
    assert otel.value("aksfw.pairs.unregistered", **PANORAMA) == 0
    assert otel.value("aksfw.pairs.held", **PANORAMA) == 2
    assert otel.histogram("aksfw.event.lag", **PANORAMA).count == 1  # only the write


def test_a_poisoned_message_is_counted_with_its_queue(world, otel):
    enqueue(world.connection_string, "panorama-updates", "not json")
    world.drain()
    assert poison_messages(world.connection_string, "panorama-updates") == ["not json"]
    assert (
        otel.value("aksfw.messages.poisoned", queue="panorama-updates", reason="MalformedMessage")
        == 1
    )
    failures = otel.value("aksfw.failures", kind="input", stage="apply", cluster="", target="")
    assert failures == 1


def test_a_panorama_outage_counts_transient_failures_by_stage_then_a_refusal_as_permanent(
    world, otel
):
    world.kube.services = [service(**WEB)]
    world.panorama.inject(Fault.HTTP_503, count=8)  # two deliveries of 4 attempts each
    deliver_event("lb-write.eventgrid.json")
    world.drain()
    assert "20.0.0.1" in world.registered()
    transient = {"kind": "transient", "stage": "apply", **PANORAMA}
    assert otel.value("aksfw.failures", **transient) == 2
    assert otel.histogram("aksfw.apply.duration", **PANORAMA, outcome="failed").count == 2
    assert otel.histogram("aksfw.apply.duration", **PANORAMA, outcome="applied").count == 1
    failed = [s for s in otel.finished() if s.status.status_code is StatusCode.ERROR]
    assert {s.name for s in failed} == {"aksfw.apply", "POST /api/"}
    assert {s.attributes.get("http.response.status_code") for s in failed} >= {503}

    world.kube.services = [service(**{**WEB, "ips": ["20.0.0.3"]})]
    world.panorama.inject(Fault.FORBIDDEN, count=1)
    deliver_event("lb-write.eventgrid.json")
    world.drain()
    permanent = {"kind": "permanent", "stage": "apply", **PANORAMA}
    assert otel.value("aksfw.failures", **permanent) == 1
    assert otel.value("aksfw.messages.poisoned", queue="panorama-updates", reason="AuthError") == 1


def test_failures_of_the_event_timer_and_http_stages_are_counted_by_kind(world, otel):
    HANDLERS["resource_event"](
        func.EventGridEvent(
            id="bad", data="not an object", topic="", subject="",
            event_type="Microsoft.Resources.ResourceWriteSuccess", event_time=None,
            data_version="",
        )
    )  # fmt: skip
    world.arm.inject(403, count=20)
    with pytest.raises(Exception, match="403"):
        HANDLERS["resync_timer"](TimerRequest())
    assert world.http("POST", "resync", b"{}").status_code == 503
    unknown = {"cluster": "", "target": ""}
    assert otel.value("aksfw.failures", kind="input", stage="event", **unknown) == 1
    assert otel.value("aksfw.failures", kind="permanent", stage="timer", **unknown) == 1
    assert otel.value("aksfw.failures", kind="permanent", stage="http", **unknown) == 1
    (event,) = otel.finished("aksfw.event")
    assert event.status.status_code is StatusCode.ERROR
    assert event.attributes["error.type"] == "MalformedEvent"


def test_queue_depths_are_recorded_at_each_timer_tick_and_status_call(world, otel):
    HANDLERS["resync_timer"](TimerRequest())
    depths = {a["queue"]: p.value for a, p in otel.points("aksfw.queue.depth")}
    assert depths == {
        "cluster-resync": 1,  # the timer's own fan-out, still waiting
        "panorama-updates": 0,
        "cluster-resync-poison": 0,
        "panorama-updates-poison": 0,
    }
    world.drain()
    enqueue(world.connection_string, "cluster-resync", "not json")
    world.drain()
    status = json.loads(world.http("GET", "status").get_body())
    depths = {a["queue"]: p.value for a, p in otel.points("aksfw.queue.depth")}
    assert depths == status["queues"]
    assert depths["cluster-resync"] == 0 and depths["cluster-resync-poison"] == 1


# ------------------------------------------------------------------------------ logs and secrets


def test_log_records_carry_cluster_and_target_as_otel_attributes(world, otel):
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = LoggingHandler(logger_provider=provider)
    logger = logging.getLogger(telemetry.LOGGER_NAME)
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        world.kube.services = [service(**WEB)]
        deliver_event("lb-write.eventgrid.json")
        world.drain()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        provider.shutdown()
    attributes = [dict(r.log_record.attributes or {}) for r in exporter.get_finished_logs()]
    applied = [a for a in attributes if a.get("event") == "apply.snapshot"]
    assert applied and applied[0]["cluster"] == CLUSTER and applied[0]["target"] == "panorama"


def test_the_api_key_never_reaches_a_span_or_a_log_record(world, otel, caplog):
    caplog.set_level(logging.DEBUG)
    world.kube.services = [service(**WEB)]
    world.panorama.inject(Fault.HTTP_503, count=2)
    world.panorama.inject(Fault.REDIRECT, count=1)
    deliver_event("lb-write.eventgrid.json", context=host_context())
    world.drain()
    world.http("GET", "status")
    seen: list[str] = []
    for span in otel.finished():
        seen += [span.name, repr(dict(span.attributes or {})), repr(span.status.description)]
        seen += [repr(event.attributes) for event in span.events]
    for record in caplog.records:
        seen += [record.getMessage(), repr(vars(record))]
    assert len(otel.finished()) > 5 and len(caplog.records) > 5
    for text in seen:
        assert API_KEY not in text


# ------------------------------------------------------------------------------ export switch


def test_without_a_connection_string_nothing_is_configured_or_exported(world, monkeypatch):
    monkeypatch.delenv(telemetry.CONNECTION_STRING, raising=False)
    assert telemetry.configure({}) is False
    functions.application()  # the Functions adapter's own start-up path
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert not isinstance(metrics.get_meter_provider(), MeterProvider)
    assert not logging.getLogger(telemetry.LOGGER_NAME).handlers


PROBE = """
import json, logging, sys
from opentelemetry import trace
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from aksfw_core import telemetry
if sys.argv[1] == "worker":  # what PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY does first
    trace.set_tracer_provider(TracerProvider())
environ = {telemetry.CONNECTION_STRING: sys.argv[2]}
first, second = telemetry.configure(environ), telemetry.configure(environ)
print(json.dumps({
    "configured": [first, second],
    "tracer": type(trace.get_tracer_provider()).__name__,
    "requests": RequestsInstrumentor().is_instrumented_by_opentelemetry,
    "handlers": [type(h).__name__ for h in logging.getLogger(telemetry.LOGGER_NAME).handlers],
}))
"""


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("already", "configured", "handlers"),
    [("none", [True, False], ["LoggingHandler"]), ("worker", [False, False], [])],
)
def test_a_connection_string_configures_the_distro_once_unless_the_worker_did(
    tmp_path, already, configured, handlers
):
    # In a process of its own: the distro sets global providers for good. The endpoint is
    # a closed local port, so nothing leaves the machine.
    endpoint = "http://127.0.0.1:9/"
    connection = f"InstrumentationKey={'0' * 8}-0000-0000-0000-{'0' * 12};IngestionEndpoint={endpoint};LiveEndpoint={endpoint}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLICATIONINSIGHTS_")}
    env |= {"TMPDIR": str(tmp_path), "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, already, connection],
        capture_output=True, text=True, timeout=60, env=env, check=True,
    )  # fmt: skip
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["configured"] == configured
    assert found["tracer"] == "TracerProvider"
    assert found["requests"] is False  # the Panorama client's own spans, not a second set
    assert found["handlers"] == handlers


@pytest.mark.parametrize(
    ("authentication", "entra"),
    [
        ("", False),
        ("Authorization=AAD", True),
        ("ClientId=00000000-0000-0000-0000-000000000001;Authorization=AAD", True),
        ("authorization=aad;clientid=x", True),
        ("Authorization=Key", False),
        ("garbage", False),
    ],
)
def test_the_authentication_string_selects_entra_id(authentication, entra):
    assert (entra_credential(authentication) is not None) is entra


# ------------------------------------------------------------------------------ message fields


@pytest.mark.parametrize(
    ("traceparent", "tracestate", "expected"),
    [
        (HOST_TRACEPARENT, None, TraceContext(HOST_TRACEPARENT)),
        (HOST_TRACEPARENT, "a=1,b=2", TraceContext(HOST_TRACEPARENT, "a=1,b=2")),
        (HOST_TRACEPARENT, "x" * (MAX_TRACESTATE + 1), TraceContext(HOST_TRACEPARENT)),
        (HOST_TRACEPARENT, "k=\u00e9", TraceContext(HOST_TRACEPARENT)),
        (HOST_TRACEPARENT, "k=v\n", TraceContext(HOST_TRACEPARENT)),
        (HOST_TRACEPARENT.upper(), None, None),
        (HOST_TRACEPARENT.replace("00-", "ff-", 1), None, None),
        (f"00-{HOST_TRACE_ID}-{'0' * 16}-01", None, None),
        (HOST_TRACEPARENT + "-extra", None, None),
        (HOST_TRACEPARENT[:-1], None, None),
        (55, None, None),
        (None, "k=v", None),
        ("", None, None),
    ],
)
def test_trace_context_is_read_as_data(traceparent, tracestate, expected):
    assert read_trace_context(traceparent, tracestate) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_764_000_000, 1_764_000_000.0),
        (1_764_000_000.5, 1_764_000_000.5),
        (True, None),
        ("1764000000", None),
        (math.nan, None),
        (math.inf, None),
        (-1, None),
        (1e300, None),
        (None, None),
    ],
)
def test_origin_time_is_read_as_data(value, expected):
    assert read_origin_time(value) == expected


def test_old_messages_without_telemetry_fields_still_decode_and_new_ones_round_trip():
    old = '{"v":1,"kind":"resync","cluster":"%s","reason":"timer","followUp":false,"audit":false}'
    assert decode(old % CLUSTER) == ResyncRequest(CLUSTER, "timer")
    plain = ResyncRequest(CLUSTER, "timer")
    assert encode(plain) == old % CLUSTER  # without telemetry, byte for byte as before
    traced = ResyncRequest(
        CLUSTER, "timer", trace=TraceContext(HOST_TRACEPARENT, "k=v"), origin_time=1.8e9
    )
    assert decode(encode(traced)) == traced
    snapshot = Snapshot(CLUSTER, "aks-prod1", "panorama", 1, trace=TraceContext(HOST_TRACEPARENT))
    assert decode(encode(snapshot)) == snapshot


def test_stamping_adds_the_current_trace_and_an_origin_time_but_keeps_a_given_origin():
    provider = TracerProvider()
    request = ResyncRequest(CLUSTER, "timer")
    (outside,) = stamped([request], now=1.8e9)
    assert outside.trace is None and outside.origin_time == 1.8e9
    with provider.get_tracer("test").start_as_current_span("work") as span:
        delayed, given = stamped(
            [request, ResyncRequest(CLUSTER, "event", origin_time=1.7e9)], 60, 1.8e9
        )
    assert delayed.origin_time == 1.8e9 + 60  # due when the delay ends
    assert given.origin_time == 1.7e9
    assert delayed.trace is not None
    assert delayed.trace.traceparent.split("-")[2] == f"{span.get_span_context().span_id:016x}"


def test_a_forgetful_target_and_a_full_one_show_in_the_metrics(world, otel):
    world.kube.services = [service(**WEB)]
    HANDLERS["resync_timer"](TimerRequest())  # the first run: the canary is registered
    world.drain()  # the audit reads the table: its count is recorded
    target = {"target": "panorama"}
    assert otel.value("aksfw.panorama.canary_checks", outcome="first", **target) == 1
    assert otel.value("aksfw.panorama.registered_ips", **target) == 1  # the canary, before
    assert otel.points("aksfw.panorama.capacity_warning") == []  # no threshold set

    world.panorama.clear()
    HANDLERS["resync_timer"](TimerRequest())
    world.drain()
    assert otel.value("aksfw.panorama.canary_checks", outcome="forgot", **target) == 1
    assert otel.value("aksfw.panorama.target_forgot", **target) == 1
    assert otel.value("aksfw.panorama.registered_ips", **target) == 1  # the canary again

    # With a threshold the same reads say whether it is reached (and log a warning).
    settings = settings_for(world.panorama, capacity_warning_ips=2)
    telemetry = otel.app.engine.telemetry
    with PanoramaClient(settings, api_key(API_KEY), on_count=telemetry.registered_ips) as client:
        client.registered()
    assert otel.value("aksfw.panorama.registered_ips", **target) == 2  # 20.0.0.1 is back
    assert otel.value("aksfw.panorama.capacity_warning", **target) == 1
