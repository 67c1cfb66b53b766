"""Plain-text tables of the app's answers for an operator's terminal: `GET /api/status`
and `POST /api/replay` as `aksfw status` and `aksfw replay` print them. Pure code.

The answers come from the network: every cell is made printable and cut short, so a
stray control character or a long error cannot garble the terminal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_CELL_CHARS = 80
_NONE = "-"


def status_table(document: Any) -> str:
    """Per cluster and target: state, last applied, counts, last error; then the queue
    depths (and the inventory error, if the app reported one)."""
    document = _mapping(document)
    rows: list[list[object]] = []
    for cluster in _mappings(document.get("clusters")):
        name = cluster.get("tagName") or cluster.get("name") or _short(cluster.get("id"))
        targets = _mappings(cluster.get("targets"))
        if not targets:
            state = "not applied" if cluster.get("monitored", True) else "unmonitored"
            rows.append([name, _NONE, state, _NONE, _NONE, _NONE, _NONE])
        for target in targets:
            rows.append(
                [
                    name,
                    target.get("target"),
                    _state(cluster, target),
                    target.get("lastApplied"),
                    target.get("ips"),
                    target.get("tags"),
                    target.get("lastError"),
                ]
            )
    headers = ["CLUSTER", "TARGET", "STATE", "LAST APPLIED", "IPS", "TAGS", "LAST ERROR"]
    parts = [_table(headers, rows) if rows else "no cluster is monitored or applied"]
    queues = _mapping(document.get("queues"))
    if queues:
        parts.append(_table(["QUEUE", "DEPTH"], [[name, depth] for name, depth in queues.items()]))
    if document.get("inventoryError"):
        parts.append(f"inventory error: {_cell(document['inventoryError'])}")
    return "\n\n".join(parts) + "\n"


def replay_table(document: Any) -> str:
    """One row per message read (id, queue, kind, cluster, target, decision), the reason
    of each kept one under the table, and the totals."""
    document = _mapping(document)
    rows: list[list[object]] = []
    reasons: list[str] = []
    for message in _mappings(document.get("messages")):
        decision = str(message.get("decision") or _NONE)
        if message.get("reason"):
            decision = f"{decision}: {message['reason']}"
            reasons.append(f"{_cell(message.get('id'))}: {_cell(message.get('detail'), 200)}")
        rows.append(
            [
                message.get("id"),
                message.get("queue"),
                message.get("kind"),
                _short(message.get("cluster")),
                message.get("target"),
                decision,
            ]
        )
    headers = ["ID", "QUEUE", "KIND", "CLUSTER", "TARGET", "DECISION"]
    parts = [_table(headers, rows) if rows else "no poisoned message"]
    if reasons:
        parts.append("\n".join(reasons))
    totals = _mapping(document.get("totals"))
    verb = "would replay" if document.get("dryRun") else "replayed"
    count = totals.get("wouldReplay" if document.get("dryRun") else "replayed", 0)
    summary = f"read {totals.get('read', 0)}: {count} {verb}, {totals.get('kept', 0)} kept"
    if document.get("more"):
        summary += " (more may be waiting: run it again)"
    parts.append(summary)
    return "\n\n".join(parts) + "\n"


def _state(cluster: Mapping[str, Any], target: Mapping[str, Any]) -> str:
    if target.get("lastError"):
        return "error"
    if not cluster.get("monitored", True):
        return "unmonitored"
    if not target.get("lastApplied"):
        return "pending"
    return "ok"


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [list(headers)] + [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def _cell(value: object, most: int = _CELL_CHARS) -> str:
    if value is None or value == "":
        return _NONE
    text = "".join(c if c.isprintable() else "?" for c in " ".join(str(value).split()))
    return text if len(text) <= most else text[: most - 1] + "…"


def _short(cluster_id: object) -> object:
    """A cluster's name from its resource ID (its last segment)."""
    if isinstance(cluster_id, str) and "/" in cluster_id:
        return cluster_id.rstrip("/").rsplit("/", 1)[-1]
    return cluster_id


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _mappings(value: object) -> list[Mapping[str, Any]]:
    """The objects of a list (anything else in it, or no list at all, is skipped)."""
    items = value if isinstance(value, list) else []
    return [item for item in items if isinstance(item, Mapping)]
