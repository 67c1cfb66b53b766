"""The command line's own bounds: how long a call on the app's API may take and how big
its answer may be, how `aksfw uninstall --wait` polls, and the ceilings of options that
the configuration does not have. Those it shares with the configuration (batch size, tag
timeout, ...) are checked by `aksfw_core.config`, and the app's by `aksfw_core.limits`.
"""

from __future__ import annotations

from dataclasses import dataclass

from aksfw_core.limits import MIB


@dataclass(frozen=True)
class CommandLineLimits:
    """Bounds on the command line's calls on the app, its waits and its options."""

    app_connect_timeout_s: float = 10.0
    """Seconds to open a connection to the Function App."""
    app_deadline_s: float = 240.0
    """Seconds one whole request to the Function App may take: Azure's front end ends an
    HTTP trigger after 230."""
    app_max_response_bytes: int = 16 * MIB
    """Bytes of one answer of the Function App at most (a replay report of the largest call
    is far smaller)."""
    uninstall_poll_s: float = 5.0
    """Seconds between two reads of `GET /api/status` while `aksfw uninstall --wait` waits."""
    uninstall_resend_s: float = 30.0
    """Seconds after which a wait that still sees tags, and no snapshot left in the updates
    queue, asks for the uninstall again (a snapshot that raced the first call)."""
    uninstall_max_wait_s: float = 3600.0
    """Seconds `aksfw uninstall --wait` may be given at most."""
    watch_max_debounce_s: float = 300.0
    """Seconds `aksfw watch --debounce-seconds` may be given at most."""


LIMITS = CommandLineLimits()
"""The bounds the commands run with, read when a command runs (a test may replace it)."""
