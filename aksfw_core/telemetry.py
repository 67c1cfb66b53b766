"""Metrics and traces through OpenTelemetry, and the one switch that exports them to
Application Insights.

`configure(environ)` runs once per process (the Functions adapter calls it): with
`APPLICATIONINSIGHTS_CONNECTION_STRING` set it configures the Azure Monitor distro, with
the managed identity that `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` names when it asks
for Entra ID, unless the Functions Python worker configured it already
(`PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true`). Without a connection string nothing
is exported and the instruments cost next to nothing.

`Telemetry` owns the instruments and the tracer, made from the providers it is given (the
global ones by default), so a test reads them from providers of its own. The instrument
names and attributes are a contract with the workbook and alerts: change none.

One trace follows a change from its trigger to Panorama: `aksfw.event` (or `aksfw.timer`,
`aksfw.http`) → `aksfw.resync` → `aksfw.apply` → a client span per Panorama request. The
queue messages carry the W3C trace context of the span that sent them (`stamped`); a
trigger without one is parented on the Functions host's invocation.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from azure.identity import ManagedIdentityCredential
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from aksfw_core.errors import ConfigError, InputError, Retryable
from aksfw_core.logs import log_event
from aksfw_core.rules.messages import (
    ResyncRequest,
    Snapshot,
    TraceContext,
    read_trace_context,
)
from aksfw_core.rules.outcome import ApplyOutcome

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

log = logging.getLogger(__name__)

NAME = "aksfw"
"""The meter's and the tracer's name."""
CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
AUTHENTICATION_STRING = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"
LOGGER_NAME = "aksfw_core"
"""The logger whose records are exported when this module configures the exporter."""

LAG_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)
"""Seconds: from a change to Panorama holding it."""
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
"""Seconds: one apply."""


_PROPAGATOR = TraceContextTextMapPropagator()
_configure_lock = threading.Lock()
_configured = False

M = TypeVar("M", ResyncRequest, Snapshot)


def failure_kind(error: BaseException) -> str:
    """`transient`, `config`, `input` or `permanent`, from the error's class: what trying
    again can do. An unexpected exception (a bug) repeats, so it is permanent."""
    if isinstance(error, Retryable):
        return "transient"
    if isinstance(error, ConfigError):
        return "config"
    if isinstance(error, InputError):
        return "input"
    return "permanent"  # NonRetryable: refused credentials or requests


class Telemetry:
    """aksfw's instruments and tracer."""

    def __init__(
        self,
        meter_provider: metrics.MeterProvider | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        meter = (meter_provider or metrics.get_meter_provider()).get_meter(NAME)
        self.tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(NAME)
        """For spans of aksfw's own, such as the Panorama client's."""
        self._clock = clock
        self._lag = meter.create_histogram(
            "aksfw.event.lag",
            unit="s",
            description="From a change (event time, or when a request was due) to the "
            "Panorama write that applied it",
            explicit_bucket_boundaries_advisory=LAG_BUCKETS,
        )
        self._apply_duration = meter.create_histogram(
            "aksfw.apply.duration",
            unit="s",
            description="One snapshot's apply, by outcome",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._registered = meter.create_counter(
            "aksfw.pairs.registered", unit="{pair}", description="IP-tag pairs registered"
        )
        self._unregistered = meter.create_counter(
            "aksfw.pairs.unregistered", unit="{pair}", description="IP-tag pairs unregistered"
        )
        self._pairs_kept = meter.create_gauge(
            "aksfw.pairs.held", unit="{pair}", description="IP-tag pairs aksfw holds on a target"
        )
        self._failures = meter.create_counter(
            "aksfw.failures", unit="{failure}", description="Failures by kind and stage"
        )
        self._poisoned = meter.create_counter(
            "aksfw.messages.poisoned",
            unit="{message}",
            description="Messages aksfw put on a poison queue",
        )
        self._depth = meter.create_gauge(
            "aksfw.queue.depth", unit="{message}", description="Approximate messages waiting"
        )
        self._registered_ips = meter.create_gauge(
            "aksfw.panorama.registered_ips",
            unit="{ip}",
            description="IPs registered on a target from all sources, at each read of its table",
        )
        self._capacity_warning = meter.create_gauge(
            "aksfw.panorama.capacity_warning",
            unit="1",
            description="1 while a target holds panorama.capacityWarningIps registered IPs or more",
        )
        self._canary_checks = meter.create_counter(
            "aksfw.panorama.canary_checks",
            unit="{check}",
            description="Checks of a target's canary, by what they found",
        )
        self._target_forgot = meter.create_counter(
            "aksfw.panorama.target_forgot",
            unit="{event}",
            description="Targets found to have lost their registrations (canary gone)",
        )

    # ------------------------------------------------------------------ spans

    @contextmanager
    def activity(
        self,
        name: str,
        stage: str,
        *,
        parent: TraceContext | None = None,
        invocation: TraceContext | None = None,
        cluster: str = "",
        target: str = "",
        kind: SpanKind = SpanKind.CONSUMER,
    ) -> Iterator[trace.Span]:
        """A span for one trigger's work, current while it runs; an exception leaving it
        is counted in `aksfw.failures` under `stage` and marks the span failed.

        The parent is `parent` (the trace context a message carried), else `invocation`
        (the Functions host's for this invocation), else the current context. When the
        message's context is the parent, the invocation's is linked.
        """
        chosen = parent or invocation
        links = []
        if parent is not None and invocation is not None and invocation != parent:
            linked = trace.get_current_span(_extract(invocation)).get_span_context()
            if linked.is_valid:
                links.append(Link(linked))
        attributes = {"aksfw.stage": stage}
        if cluster:
            attributes["aksfw.cluster"] = cluster
        if target:
            attributes["aksfw.target"] = target
        with (
            self.failures(stage, cluster, target),
            self.tracer.start_as_current_span(
                name,
                context=_extract(chosen) if chosen else None,
                kind=kind,
                attributes=attributes,
                links=links,
                record_exception=False,  # exception text stays in the logs
                set_status_on_exception=False,
            ) as span,
        ):
            try:
                yield span
            except BaseException as error:
                span.set_attribute("error.type", type(error).__name__)
                span.set_status(Status(StatusCode.ERROR))
                raise

    @contextmanager
    def failures(self, stage: str, cluster: str = "", target: str = "") -> Iterator[None]:
        """Count an exception leaving the block in `aksfw.failures`, and re-raise it."""
        try:
            yield
        except Exception as error:
            self.failed(error, stage, cluster, target)
            raise

    # ------------------------------------------------------------------ metrics

    def failed(self, error: BaseException, stage: str, cluster: str = "", target: str = "") -> None:
        """Count one failure: `stage` is event, resync, apply, timer or http."""
        self._failures.add(
            1,
            {"kind": failure_kind(error), "stage": stage, "cluster": cluster, "target": target},
        )

    def poisoned(self, queue: str, reason: str) -> None:
        """Count a message aksfw moved from `queue` to its poison queue."""
        self._poisoned.add(1, {"queue": queue, "reason": reason})

    def queue_depths(self, depths: Mapping[str, int]) -> None:
        """Record the queues' approximate depths (read by the caller, never here)."""
        for queue, depth in depths.items():
            self._depth.set(depth, {"queue": queue})

    def registered_ips(self, target: str, count: int, warning_ips: int | None = None) -> None:
        """Record a target's count of registered IPs, and whether it reached
        `panorama.capacityWarningIps` (when set)."""
        self._registered_ips.set(count, {"target": target})
        if warning_ips is not None:
            self._capacity_warning.set(1 if count >= warning_ips else 0, {"target": target})

    def canary_checked(self, target: str, outcome: str) -> None:
        """Count one check of a target's canary: `present`, `first`, `forgot`, `lapsed` or
        `failed`; `forgot` counts in `aksfw.panorama.target_forgot` too."""
        self._canary_checks.add(1, {"target": target, "outcome": outcome})
        if outcome == "forgot":
            self._target_forgot.add(1, {"target": target})

    def apply(
        self,
        snapshot: Snapshot,
        apply: Callable[[Snapshot], ApplyOutcome],
        invocation: TraceContext | None = None,
    ) -> ApplyOutcome:
        """`apply(snapshot)` in an `aksfw.apply` span, recording its duration and outcome,
        the pairs it wrote and holds, and the lag from the snapshot's origin.

        Raises:
            whatever `apply` raises, after counting it.
        """
        where = {"cluster": snapshot.cluster_id, "target": snapshot.target}
        with self.activity(
            "aksfw.apply",
            "apply",
            parent=snapshot.trace,
            invocation=invocation,
            cluster=snapshot.cluster_id,
            target=snapshot.target,
        ) as span:
            started = time.monotonic()
            try:
                outcome = apply(snapshot)
            except Exception:
                self._apply_duration.record(
                    time.monotonic() - started, where | {"outcome": "failed"}
                )
                raise
            duration = time.monotonic() - started
            wrote = outcome.registered + outcome.unregistered
            # `aksfw.apply.duration`'s outcomes: applied (wrote to Panorama), unchanged (had
            # nothing to write), skipped (did not apply), failed (raised).
            summary = "applied" if wrote else outcome.outcome.metric
            span.set_attribute("aksfw.outcome", outcome.outcome)
            self._apply_duration.record(duration, where | {"outcome": summary})
            if outcome.registered:
                self._registered.add(outcome.registered, where)
            if outcome.unregistered:
                self._unregistered.add(outcome.unregistered, where)
            if outcome.pairs_kept is not None:
                self._pairs_kept.set(outcome.pairs_kept, where)
            if wrote and snapshot.origin_time is not None:
                self._lag.record(max(0.0, self._clock() - snapshot.origin_time), where)
            return outcome


def current_trace() -> TraceContext | None:
    """The W3C trace context of the current span, or None outside a valid one."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return read_trace_context(carrier.get("traceparent"), carrier.get("tracestate"))


def stamped(messages: Sequence[M], delay_s: float = 0, now: float | None = None) -> list[M]:
    """The messages about to be sent, each with the current trace context and, unless it
    has one, an origin time: now, or when a delayed message becomes due."""
    trace_context = current_trace()
    origin = (time.time() if now is None else now) + delay_s
    return [
        replace(
            message,
            trace=trace_context or message.trace,
            origin_time=origin if message.origin_time is None else message.origin_time,
        )
        for message in messages
    ]


def _extract(trace_context: TraceContext) -> otel_context.Context:
    carrier = {"traceparent": trace_context.traceparent}
    if trace_context.tracestate:
        carrier["tracestate"] = trace_context.tracestate
    return _PROPAGATOR.extract(carrier)


# ---------------------------------------------------------------------- export


def configure(environ: Mapping[str, str]) -> bool:
    """Export metrics, traces and `aksfw_core` logs to Application Insights when
    `APPLICATIONINSIGHTS_CONNECTION_STRING` is set; at most once per process. Returns
    whether this call configured the exporter. A setting the distro refuses is logged and
    leaves telemetry off: it never stops the engine."""
    global _configured  # noqa: PLW0603 - the process's exporter is process state
    with _configure_lock:
        if _configured:
            return False
        if not environ.get(CONNECTION_STRING):
            log_event(log, "telemetry.off", logging.DEBUG, reason=f"{CONNECTION_STRING} unset")
            return False
        if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            # The Python worker configured the distro (PYTHON_APPLICATIONINSIGHTS_ENABLE_
            # TELEMETRY): a second exporter would send everything twice.
            _configured = True
            log_event(log, "telemetry.configured_by_worker")
            return False
        from azure.monitor.opentelemetry import (  # noqa: PLC0415 - heavy, needed only here
            configure_azure_monitor,
        )

        _configured = True  # one attempt: a failed one may have left providers half set
        credential = entra_credential(environ.get(AUTHENTICATION_STRING, ""))
        try:
            configure_azure_monitor(
                connection_string=environ[CONNECTION_STRING],
                credential=credential,
                logger_name=LOGGER_NAME,
                # The Panorama client's spans and the Azure SDK's own describe every
                # request; the generic HTTP instrumentations would describe each again.
                instrumentation_options={
                    library: {"enabled": False} for library in ("requests", "urllib", "urllib3")
                },
            )
        except Exception as error:  # the distro's errors are not aksfw's to classify
            # The type only: the message may quote the connection string.
            log_event(log, "telemetry.failed", logging.ERROR, error=type(error).__name__)
            return False
        log_event(log, "telemetry.configured", entra=credential is not None)
        return True


def entra_credential(authentication: str) -> TokenCredential | None:
    """The managed identity an `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` names
    (`Authorization=AAD[;ClientId=<client ID>]`), or None when it asks for no Entra ID
    authentication. Its keys are case-insensitive."""
    fields: dict[str, str] = {}
    for part in authentication.split(";"):
        key, _, value = part.partition("=")
        fields[key.strip().casefold()] = value.strip()
    if fields.get("authorization", "").upper() != "AAD":
        return None
    client_id = fields.get("clientid") or None
    return ManagedIdentityCredential(client_id=client_id)
