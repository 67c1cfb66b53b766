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


def printable(text: str) -> str:
    """`text` safe for a terminal: every character that is not printable (escape sequences,
    line breaks, bidirectional overrides) written as its Python escape, e.g. `\\x1b`, so a
    name from a services file or an API server can neither drive the terminal nor forge a
    line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class TerminalFormatter(logging.Formatter):
    """Log lines for a person at a terminal (the command line only; the Functions app keeps
    the JSON lines): aksfw's events as sentences, anything else as `logger: message`."""

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, "event", None)
        fields = _fields(record.getMessage()) if event is not None else None
        if fields is None:
            return printable(f"{record.name}: {record.levelname.lower()}: {record.getMessage()}")
        fields.pop("event", None)
        if event == "retry":
            return printable(
                f"aksfw: retrying {fields.get('call')}: {fields.get('error')} "
                f"(attempt {fields.get('attempt')} failed, waiting {fields.get('wait_s')} s)"
            )
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        sentence = fields.get("message")
        if isinstance(sentence, str):  # an event that says itself in a sentence
            return printable(f"aksfw: {level}{sentence}")
        details = ", ".join(f"{name}={value}" for name, value in fields.items())
        return printable(f"aksfw: {level}{event}" + (f": {details}" if details else ""))


def _fields(text: str) -> dict[str, object] | None:
    try:
        fields = json.loads(text)
    except ValueError:
        return None
    return fields if isinstance(fields, dict) else None
