"""The fault suite: for each fault, where the change's message went while the fault lasted,
what the applied state and Panorama held meanwhile, and that after recovery Panorama holds
exactly the wanted tags while nothing outside aksfw's tags changed.

Each case runs the whole app (Event Grid function, queue functions over Azurite, the
Resource Manager, Kubernetes and Panorama fakes): converge, break something, change the
cluster's Services, send the event, let the queues run out, repair, ask for a resync.

A message's path is one of the promises of docs/reliability.md and docs/panorama.md
("How aksfw talks to Panorama"): a transient fault is retried inside the call (4 attempts in all), then the
message returns to the queue, up to maxDequeueCount (5) deliveries, then `-poison`; a
fault that can never succeed (refused credentials) is poisoned on its first delivery.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from aksfw_core import functions
from aksfw_core.errors import AksfwError
from aksfw_core.pipeline.state import AppliedState
from aksfw_core.pipeline.state_store import StateStore
from aksfw_local.fakes.kube_api import service
from aksfw_local.fakes.panorama import Fault
from aksfw_local.functions_host import poison_messages
from aksfw_local.stack import LocalStack
from tests.support.faults import (
    AFTER,
    BEFORE,
    FOREIGN,
    RETRIED_THEN_POISONED,
    converge,
    merged,
    owned_tags,
    tags_of,
)
from tests.support.flow import DONE, POISONED, RETRIED, Delivery
from tests.support.queues import RESYNCS, UPDATES

AFTER_LARGE = AFTER + [
    service(f"s{i}", "bulk", ips=[f"20.1.{i // 250}.{i % 250 + 1}"]) for i in range(520)
]

ATTEMPTS = 4
"""The production retry policy: 4 attempts in all (docs/reliability.md). Written out, not
read from `RetrySettings`, so a policy that stops retrying fails here."""

# What the applied state of (aks-prod1, panorama) holds once the fault has played out.
UNTOUCHED = "untouched"
"""Exactly the converged state: the failure came before anything was applied."""
MARKED_DIRTY = "marked dirty"
"""The converged tags, version and fingerprint (docs/app.md, "Reliability": the state is
untouched until an apply succeeds), marked dirty with the error noted, so the next apply
compares with Panorama itself and /api/status shows the error."""
SAVED = "saved"
"""The new snapshot, clean."""
SAVED_DIRTY = "saved dirty"
"""The new snapshot, dirty: Panorama refused some entries (docs/app.md, "Reliability")."""


@dataclass(frozen=True)
class Case:
    """A fault: how to cause it and repair it, the Services changed meanwhile, and the path
    the change's message must take while the fault lasts."""

    inject: Callable[[LocalStack, pytest.MonkeyPatch, object], None]
    queue: str
    """The queue whose function meets the fault (the other queue sees no delivery)."""
    path: tuple[str, ...]
    """What each delivery of that message did, by dequeue count (DONE, RETRIED, POISONED)."""
    attempts: int
    """Tries of the failing call in each delivery: 1 = not retried inside the call."""
    state: str
    """The applied state once the fault has played out: UNTOUCHED, MARKED_DIRTY, SAVED or
    SAVED_DIRTY. Panorama then holds the new tags (SAVED), the new tags but the refused
    entries (SAVED_DIRTY), or the converged ones (otherwise)."""
    repair: Callable[[LocalStack], None] = lambda world: None
    requests: int | None = None
    """Requests the faulty server (Kubernetes for RESYNCS, Panorama for UPDATES) receives
    per delivery, when not `attempts` (0: unreachable)."""
    after: tuple[dict, ...] = tuple(AFTER)
    refused: tuple[str, ...] = ()
    """IPs whose entries Panorama refuses while the fault lasts."""

    @property
    def poisoned_at(self) -> int | None:
        """The dequeue count at which the message goes to the poison queue, if it does."""
        return self.path.index(POISONED) + 1 if POISONED in self.path else None


def panorama_transient(fault: Fault) -> Case:
    return Case(
        inject=lambda world, mp, azurite: world.panorama.inject(fault, 1000),
        repair=lambda world: world.panorama.clear_faults(),
        queue=UPDATES,
        path=RETRIED_THEN_POISONED,
        attempts=ATTEMPTS,
        state=MARKED_DIRTY,
    )


def fresh_app(world: LocalStack) -> None:
    functions.application.cache_clear()  # a new instance: inventory and credentials read again


def crash_once_before_saving_state(
    world: LocalStack, monkeypatch: pytest.MonkeyPatch, azurite: object
) -> None:
    original = StateStore.save_applied
    crashed = []

    def save_applied(self, state, etag):
        if not crashed:
            crashed.append(state)
            raise RuntimeError("worker killed after registering, before saving state")
        return original(self, state, etag)

    monkeypatch.setattr(StateStore, "save_applied", save_applied)


def slow_panorama(world: LocalStack, monkeypatch: pytest.MonkeyPatch, azurite: object) -> None:
    world.panorama.slow_seconds = 1.3
    world.panorama.inject(Fault.SLOW, 3)  # three timeouts (read timeout 1 s), then answers


def short_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deadlines short enough for drip-fed answers to play out quickly (only where needed:
    under load a normal answer could pass them)."""
    config = json.loads(os.environ["AKSFW_CONFIG"])
    config["limits"].update({"panoramaDeadlineSeconds": 1, "kubeDeadlineSeconds": 0.25})
    monkeypatch.setenv("AKSFW_CONFIG", json.dumps(config))
    functions.application.cache_clear()


def drip_panorama(world: LocalStack, monkeypatch: pytest.MonkeyPatch, azurite: object) -> None:
    short_deadlines(monkeypatch)
    world.panorama.drip_seconds = 0.05  # never trips the read timeout, always the deadline
    world.panorama.inject(Fault.DRIP, 3)  # three passed deadlines (1 s each), then answers


def kube_misbehaves(**how: object) -> Callable[[LocalStack, pytest.MonkeyPatch, object], None]:
    def inject(world: LocalStack, monkeypatch: pytest.MonkeyPatch, azurite: object) -> None:
        if how.get("drip_s"):
            short_deadlines(monkeypatch)
        world.kube.__dict__.update(how)

    return inject


def kube_behaves(world: LocalStack) -> None:
    world.kube.drip_s, world.kube.endless = 0.0, False
    # Back to the default deadlines (the fixture's monkeypatch restores the rest).
    config = json.loads(os.environ["AKSFW_CONFIG"])
    config["limits"].pop("panoramaDeadlineSeconds", None)
    config["limits"].pop("kubeDeadlineSeconds", None)
    os.environ["AKSFW_CONFIG"] = json.dumps(config)
    functions.application.cache_clear()


def rotate_kube_token(world: LocalStack, monkeypatch: pytest.MonkeyPatch, azurite: object) -> None:
    world.kube.token = "rotated-elsewhere"


def restore_kube_token(world: LocalStack) -> None:
    world.kube.token = "kube-token"


CASES = {
    "panorama connection refused": Case(
        inject=lambda world, mp, azurite: world.panorama.stop(),
        repair=lambda world: world.panorama.start(),
        queue=UPDATES,
        path=RETRIED_THEN_POISONED,
        attempts=ATTEMPTS,
        requests=0,
        state=MARKED_DIRTY,
    ),
    "panorama timeouts": Case(
        inject=slow_panorama, queue=UPDATES, path=(DONE,), attempts=ATTEMPTS, state=SAVED
    ),
    "panorama drip-feeding answers": Case(
        inject=drip_panorama, queue=UPDATES, path=(DONE,), attempts=ATTEMPTS, state=SAVED
    ),
    "panorama endless answer": Case(
        inject=lambda world, mp, azurite: world.panorama.inject(Fault.ENDLESS, 1000),
        repair=lambda world: world.panorama.clear_faults(),
        queue=UPDATES,
        path=(POISONED,),  # the byte cap: the same answer would come again
        attempts=1,
        state=MARKED_DIRTY,
    ),
    "panorama 5xx": panorama_transient(Fault.HTTP_500),
    "panorama 429": panorama_transient(Fault.HTTP_429),
    "panorama code 22": panorama_transient(Fault.SESSION_TIMEOUT),
    "panorama 403 mid-run": Case(
        inject=lambda world, mp, azurite: world.panorama.inject(Fault.FORBIDDEN, 1),
        repair=lambda world: world.panorama.clear_faults(),
        queue=UPDATES,
        path=(POISONED,),
        attempts=1,
        state=MARKED_DIRTY,
    ),
    "panorama truncated response": panorama_transient(Fault.TRUNCATED),
    "panorama non-XML response": Case(  # an HTML page: not an XML API, poisoned at once
        inject=lambda world, mp, azurite: world.panorama.inject(Fault.NOT_XML, 1),
        repair=lambda world: world.panorama.clear_faults(),
        queue=UPDATES,
        path=(POISONED,),
        attempts=1,
        state=MARKED_DIRTY,
    ),
    "panorama dropped connection": panorama_transient(Fault.DROP),
    "panorama per-entry failures": Case(
        inject=lambda world, mp, azurite: world.panorama.reject_ips.add("20.0.0.3"),
        repair=lambda world: world.panorama.reject_ips.clear(),
        queue=UPDATES,
        path=(DONE,),
        attempts=1,
        state=SAVED_DIRTY,
        refused=("20.0.0.3",),
    ),
    "kubernetes 401": Case(
        inject=rotate_kube_token,
        repair=restore_kube_token,
        queue=RESYNCS,
        path=(POISONED,),
        attempts=1,
        state=UNTOUCHED,
    ),
    "kubernetes 500": Case(
        inject=lambda world, mp, azurite: world.kube.inject(500, count=10_000),
        repair=lambda world: world.kube.clear_faults(),
        queue=RESYNCS,
        path=RETRIED_THEN_POISONED,
        attempts=ATTEMPTS,
        state=UNTOUCHED,
    ),
    "kubernetes list fails on its second page": Case(
        inject=lambda world, mp, azurite: world.kube.inject(500, count=10_000, on_page=1),
        repair=lambda world: world.kube.clear_faults(),
        after=tuple(AFTER_LARGE),
        queue=RESYNCS,
        path=RETRIED_THEN_POISONED,
        attempts=ATTEMPTS,
        requests=2 * ATTEMPTS,  # each attempt lists again from the first page
        state=UNTOUCHED,
    ),
    "kubernetes drip-feeding page": Case(
        inject=kube_misbehaves(drip_s=0.05),
        repair=kube_behaves,
        queue=RESYNCS,
        path=RETRIED_THEN_POISONED,  # a passed deadline is transient
        attempts=ATTEMPTS,
        state=UNTOUCHED,
    ),
    "kubernetes endless page": Case(
        inject=kube_misbehaves(endless=True),
        repair=kube_behaves,
        queue=RESYNCS,
        path=(POISONED,),  # the byte cap: the same answer would come again
        attempts=1,
        state=UNTOUCHED,
    ),
    # Resource Manager faults are retried by azure-core inside the Event Grid call, which
    # then queues the snapshot as usual.
    "resource manager 429": Case(
        inject=lambda world, mp, azurite: (fresh_app(world), world.arm.inject(429, retry_after=1)),
        queue=UPDATES,
        path=(DONE,),
        attempts=1,
        state=SAVED,
    ),
    "resource manager 500": Case(
        inject=lambda world, mp, azurite: (fresh_app(world), world.arm.inject(500, count=2)),
        queue=UPDATES,
        path=(DONE,),
        attempts=1,
        state=SAVED,
    ),
    "azurite restarted mid-run": Case(
        inject=lambda world, mp, azurite: azurite.restart(),
        queue=UPDATES,
        path=(DONE,),
        attempts=1,
        requests=3,  # the state went with the emulator: count, page, then write
        state=SAVED,
    ),
    "consumer killed between register and state save": Case(
        inject=crash_once_before_saving_state,
        queue=UPDATES,
        path=(RETRIED, DONE),  # the host makes it visible again; the replay is idempotent
        attempts=1,
        state=SAVED,
    ),
}


@pytest.fixture
def slow_reads(monkeypatch, world):
    """Panorama answers must come within 1 s, so the SLOW fault is a timeout; answers are
    capped at 1 MiB, so endless ones play out quickly."""
    config = json.loads(os.environ["AKSFW_CONFIG"])
    config["limits"] = {
        "panoramaReadTimeoutSeconds": 1,
        "panoramaMaxResponseBytes": 1024 * 1024,
        "kubeMaxResponseBytes": 1024 * 1024,
    }
    monkeypatch.setenv("AKSFW_CONFIG", json.dumps(config))
    functions.application.cache_clear()


def assert_path(case: Case, seen: list[Delivery]) -> None:
    """The change's one message took `case.path`, each delivery trying `case.attempts`
    times; the other queue had nothing to do but the event's one resync before an update."""
    if case.queue == UPDATES:  # the event only queued the resync; it listed once, wrote nothing
        resync, *seen = seen
        assert (resync.queue, resync.dequeue_count, resync.outcome) == (RESYNCS, 1, DONE), resync
        assert resync.panorama_writes == 0 and resync.kube_requests >= 1, resync
    where = [(d.queue, d.dequeue_count, d.outcome) for d in seen]
    assert where == [(case.queue, n, outcome) for n, outcome in enumerate(case.path, 1)], seen
    assert len({d.message_id for d in seen}) == 1, seen
    requests = case.attempts if case.requests is None else case.requests
    for delivery in seen:
        assert delivery.retries == case.attempts - 1, delivery
        received = delivery.kube_requests if case.queue == RESYNCS else delivery.panorama_requests
        assert received == requests, delivery
        if case.queue == RESYNCS:
            assert delivery.panorama_writes == 0, delivery  # nothing listed: nothing removed


def assert_state_while_faulty(case: Case, state: AppliedState | None, converged: AppliedState):
    assert state is not None
    if case.state == UNTOUCHED:
        assert state == converged
        return
    if case.state == MARKED_DIRTY:
        kept = (state.tags, state.version, state.fingerprint, state.tag_name)
        assert kept == (converged.tags, converged.version, converged.fingerprint, "aks-prod1")
        assert state.dirty and state.last_error, state
        return
    assert tags_of(state) == owned_tags(list(case.after))
    assert state.version > converged.version
    if case.state == SAVED:
        assert not state.dirty and state.last_error is None, state
    else:  # SAVED_DIRTY
        assert state.dirty, state
        assert all(ip in (state.last_error or "") for ip in case.refused), state


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_fault_then_recovery_ends_in_the_wanted_state(
    world, slow_reads, deliveries, monkeypatch, azurite, case
):
    converge(world)
    before = world.registered()
    converged = world.applied()
    assert converged is not None and tags_of(converged) == owned_tags(BEFORE)
    assert not converged.dirty
    deliveries.clear()

    # While the fault lasts.
    case.inject(world, monkeypatch, azurite)
    world.kube.services = list(case.after)
    with contextlib.suppress(AksfwError):  # Event Grid would redeliver; the timer heals too
        world.event("lb-write.eventgrid.json")
    world.drain()
    assert_path(case, deliveries)
    assert_state_while_faulty(case, world.applied(), converged)
    wanted = merged(FOREIGN, owned_tags(list(case.after)))
    if case.state in (SAVED, SAVED_DIRTY):
        expected = {ip: tags for ip, tags in wanted.items() if ip not in case.refused}
        expected = merged(expected, {ip: FOREIGN[ip] for ip in case.refused if ip in FOREIGN})
    else:
        expected = before  # nothing applied, and above all nothing removed
    assert world.registered() == expected
    poisoned = poison_messages(world.connection_string, case.queue)
    assert len(poisoned) == (1 if case.poisoned_at else 0), poisoned
    other = RESYNCS if case.queue == UPDATES else UPDATES
    assert poison_messages(world.connection_string, other) == []

    # After the repair, a resync brings the rest.
    deliveries.clear()
    case.repair(world)
    assert world.http("POST", "resync", b"{}").status_code == 202
    world.drain()
    assert world.registered() == wanted
    recovery = [(d.queue, d.dequeue_count, d.outcome) for d in deliveries]
    applies = [] if case.state == SAVED else [(UPDATES, 1, DONE)]  # SAVED: already there
    assert recovery == [(RESYNCS, 1, DONE), *applies], deliveries
    if applies:  # a dirty state is not trusted: the apply reads Panorama first
        reads = 2 if case.state in (MARKED_DIRTY, SAVED_DIRTY) else 0  # count, page
        assert deliveries[-1].panorama_requests == reads + 1, deliveries
    final = world.applied()
    assert final is not None and tags_of(final) == owned_tags(list(case.after))
    assert not final.dirty and final.last_error is None, final
