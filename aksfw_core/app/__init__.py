"""The Functions app's engine, in four parts:

- `engine.py`: wiring, once per process (`Engine.from_environ`): settings, storage, queues,
  the clusters' discovery, the resyncer, the applier, one clock;
- `triggers.py`: what each trigger does (Event Grid, timer, both queues, manual resync);
- `operations.py`: the operator verbs (status, replay, uninstall) with typed reports
  (`reports.py`);
- `uninstall_gate.py`: the one gate an uninstall closes; `tombstones.py`: removals.

`aksfw_core.functions` adapts the Functions host's inputs to an `App`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aksfw_core.app.engine import Engine
from aksfw_core.app.operations import Operations
from aksfw_core.app.triggers import Triggers
from aksfw_core.telemetry import Telemetry


@dataclass(frozen=True)
class App:
    """One process's engine with its triggers and operator verbs."""

    engine: Engine
    triggers: Triggers
    operations: Operations

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], telemetry: Telemetry | None = None) -> App:
        """Build from the app settings (`Engine.from_environ`).

        Raises:
            InputError: a missing or invalid setting, naming it.
        """
        engine = Engine.from_environ(environ, telemetry)
        return cls(engine, Triggers(engine), Operations(engine))
