"""Structured log lines: one JSON object per event, so Application Insights can query
fields such as cluster, target, counts and duration. Never pass a secret as a field.
"""

from __future__ import annotations

import json
import logging


def log_event(
    logger: logging.Logger, event: str, level: int = logging.INFO, **fields: object
) -> None:
    """Log `{"event": event, **fields}` as one line."""
    if logger.isEnabledFor(level):
        logger.log(level, "%s", json.dumps({"event": event, **fields}, default=str))
