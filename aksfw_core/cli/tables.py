"""Plain-text tables for an operator's terminal: the app's answers (`GET /api/status`,
`POST /api/replay` and `POST /api/uninstall` as `aksfw status`, `aksfw replay` and
`aksfw uninstall` print them, and `aksfw uninstall --cancel`'s sentence), and the
inventory `aksfw clusters` reads from Resource Manager. Pure code.

The documents come from the network: every cell is made printable and cut short, so a
stray control character or a long error cannot garble the terminal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aksfw_core.logs import printable

_CELL_CHARS = 80
_NONE = "-"
_REFUSALS = {
    "no-access": "no access: Resource Manager refused the read (403)",
    "not-found": "not found: Resource Manager does not know it (404)",
}
"""What the clusters table says for a read Resource Manager refused: its JSON's `detail`
names the call, which a row has no room for."""


def status_table(document: Any) -> str:
    """Per cluster and target: state, last applied, counts, last error; per target its
    canary (last check, last amnesia, last error); then the queue depths (and the inventory
    error, if the app reported one)."""
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
    canaries = [
        [c.get("target"), c.get("lastCheck"), c.get("lastAmnesia"), c.get("lastError")]
        for c in _mappings(document.get("canaries"))
    ]
    if canaries:
        headers = ["TARGET", "CANARY CHECKED", "LAST AMNESIA", "CANARY ERROR"]
        parts.append(_table(headers, canaries))
    queues = _mapping(document.get("queues"))
    if queues:
        parts.append(_table(["QUEUE", "DEPTH"], [[name, depth] for name, depth in queues.items()]))
    if document.get("inventoryError"):
        parts.append(f"inventory error: {_cell(document['inventoryError'])}")
    if document.get("uninstallingUntil"):
        parts.append(
            f"uninstalling: resyncs held back until {_cell(document['uninstallingUntil'])}, "
            f"since {_cell(document.get('uninstallingSince'))} by "
            f"{_cell(document.get('uninstallingBy'))} (`aksfw uninstall --cancel` ends it)"
        )
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


def uninstall_table(document: Any) -> str:
    """One row per (cluster, target) whose tags go (or would go), then the totals."""
    document = _mapping(document)
    rows = [
        [
            target.get("tagName") or _short(target.get("cluster")),
            target.get("target"),
            target.get("ips"),
            target.get("tags"),
        ]
        for target in _mappings(document.get("targets"))
    ]
    parts = [_table(["CLUSTER", "TARGET", "IPS", "TAGS"], rows) if rows else "nothing applied"]
    totals = _mapping(document.get("totals"))
    verb = "would remove" if document.get("dryRun") else "removing"
    summary = (
        f"{verb} the tags of {totals.get('targets', 0)} target(s) of "
        f"{totals.get('clusters', 0)} cluster(s): {totals.get('ips', 0)} IPs, "
        f"{totals.get('tags', 0)} IP-tags"
    )
    canaries = _mappings(document.get("canaries"))
    if canaries:
        verb = "would remove" if document.get("dryRun") else "removed"
        done = [c for c in canaries if c.get("removed") or document.get("dryRun")]
        summary += f"; {verb} the canary of {len(done)} of {len(canaries)} target(s)"
    if document.get("heldUntil"):
        summary += f"; resyncs held back until {_cell(document['heldUntil'])}"
    parts.append(summary)
    return "\n\n".join(parts) + "\n"


def cancel_sentence(document: Any) -> str:
    """What `aksfw uninstall --cancel` did, as one sentence."""
    document = _mapping(document)
    if not document.get("cancelled"):
        return "no uninstall held resyncs back: nothing to cancel\n"
    return (
        f"cancelled the uninstall's hold (started {_cell(document.get('startedAt'))} by "
        f"{_cell(document.get('startedBy'))}, until {_cell(document.get('wasUntil'))}): "
        "resyncs run again within a minute on every instance\n"
    )


def clusters_table(document: Any) -> str:
    """`aksfw clusters`: per monitored cluster the name its tags carry (its alias, or its
    AKS name) and the tags it owns; then each cluster or subscription left out, and why."""
    document = _mapping(document)
    rows: list[list[object]] = []
    for cluster in _mappings(document.get("clusters")):
        tag_name = cluster.get("tagName") or cluster.get("name")
        selectors = [s.get("name") for s in _mappings(cluster.get("selectors"))]
        owned = [f"aks.{tag_name}.*", *(f"aks_{name}.{tag_name}.*" for name in selectors)]
        group, subscription = _scope(cluster.get("id"))
        rows.append([cluster.get("name"), group, subscription, tag_name, ", ".join(owned)])
    headers = ["CLUSTER", "RESOURCE GROUP", "SUBSCRIPTION", "TAG NAME", "TAGS"]
    parts = [_table(headers, rows) if rows else "no cluster is monitored"]
    skipped: list[list[object]] = []
    for item in _mappings(document.get("skipped")):
        group, subscription = _scope(item.get("id"))
        name = _short(item.get("id")) if group != _NONE else "(subscription)"
        why = _REFUSALS.get(str(item.get("reason"))) or item.get("detail")
        skipped.append([name, group, subscription, why])
    if skipped:
        parts.append(_table(["SKIPPED", "RESOURCE GROUP", "SUBSCRIPTION", "WHY"], skipped))
    return "\n\n".join(parts) + "\n"


def remaining_targets(document: Any) -> list[tuple[str, str]]:
    """(cluster, target) of every applied state a `GET /api/status` answer lists."""
    return [
        (str(cluster.get("tagName") or _short(cluster.get("id"))), str(target.get("target")))
        for cluster in _mappings(_mapping(document).get("clusters"))
        for target in _mappings(cluster.get("targets"))
    ]


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
    text = printable(" ".join(str(value).split()))
    return text if len(text) <= most else text[: most - 1] + "…"


def _short(cluster_id: object) -> object:
    """A cluster's name from its resource ID (its last segment)."""
    if isinstance(cluster_id, str) and "/" in cluster_id:
        return cluster_id.rstrip("/").rsplit("/", 1)[-1]
    return cluster_id


def _scope(resource_id: object) -> tuple[str, str]:
    """(resource group, subscription) of a resource ID; `-` for what it does not name."""
    parts = resource_id.strip("/").split("/") if isinstance(resource_id, str) else []
    subscription = parts[1] if len(parts) > 1 and parts[0].lower() == "subscriptions" else _NONE
    group = parts[3] if len(parts) > 3 and parts[2].lower() == "resourcegroups" else _NONE
    return group, subscription


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _mappings(value: object) -> list[Mapping[str, Any]]:
    """The objects of a list (anything else in it, or no list at all, is skipped)."""
    items = value if isinstance(value, list) else []
    return [item for item in items if isinstance(item, Mapping)]
