"""The app's telemetry contract as Log Analytics queries see it (the alerts and the workbook
in infra/, the queries in the docs): the metrics with their attributes, the tables, and
the names a query uses that the contract does not define."""

from __future__ import annotations

import re

# The app's OpenTelemetry contract (meter `aksfw`): metric → attributes in AppMetrics.Properties.
METRICS = {
    "aksfw.event.lag": {"cluster", "target"},
    "aksfw.apply.duration": {"cluster", "target", "outcome"},
    "aksfw.pairs.registered": {"cluster", "target"},
    "aksfw.pairs.unregistered": {"cluster", "target"},
    "aksfw.pairs.held": {"cluster", "target"},
    "aksfw.failures": {"kind", "stage", "cluster", "target"},
    "aksfw.messages.poisoned": {"queue", "reason"},
    "aksfw.queue.depth": {"queue"},
    "aksfw.panorama.registered_ips": {"target"},
    "aksfw.panorama.capacity_warning": {"target"},
    "aksfw.panorama.canary_checks": {"target", "outcome"},
    "aksfw.panorama.target_forgot": {"target"},
}
TABLES = {"AppMetrics", "AppTraces", "AppRequests", "AppExceptions"}


def kql_problems(query: str) -> list[str]:
    """Names a query uses that the telemetry contract does not define."""
    problems = [
        f"metric {name}"
        for name in re.findall(r"'(aksfw\.[a-z._]+)'", query)
        if name not in METRICS
    ]
    attributes = set().union(*METRICS.values())
    problems += [
        f"attribute {name}"
        for name in re.findall(r"Properties\['(\w+)'\]", query)
        if name not in attributes
    ]
    problems += [
        f"table {name}" for name in re.findall(r"\b(App[A-Z]\w+)\b", query) if name not in TABLES
    ]
    return problems
