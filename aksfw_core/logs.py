"""Structured log lines: one JSON object per event, so Application Insights can query
fields such as cluster, target, counts and duration. Never pass a secret as a field.

The event name, cluster and target also ride on the record as attributes, which the
OpenTelemetry log exporter sends as attributes (`customDimensions` in Application
Insights), so queries and alerts filter on them without parsing the message.
"""

from __future__ import annotations

import json
import logging

RECORD_ATTRIBUTES = ("cluster", "target")
"""Fields copied onto the log record as attributes, besides `event`."""


def log_event(
    logger: logging.Logger, event: str, level: int = logging.INFO, **fields: object
) -> None:
    """Log `{"event": event, **fields}` as one line."""
    if logger.isEnabledFor(level):
        extra = {"event": event}
        for name in RECORD_ATTRIBUTES:
            if fields.get(name) is not None:
                extra[name] = str(fields[name])
        text = json.dumps({"event": event, **fields}, default=str)
        logger.log(level, "%s", text, extra=extra)
