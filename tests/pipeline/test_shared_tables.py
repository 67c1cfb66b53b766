"""One read of a target's table for every cluster's comparison with it
(`pipeline.shared_tables`), through the applier, against the Panorama simulator and Azurite:
how many times the target is read, and that every cluster's tags end exact (foreign ones
untouched) when writes race the read. Each "instance" is an applier with its own
coordination and tables on the same storage account; the clock is the test's."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import nullcontext

import pytest

from aksfw_core.config import PanoramaTargets
from aksfw_core.errors import Retryable
from aksfw_core.limits import Limits
from aksfw_core.panorama.client import PanoramaClient, api_key
from aksfw_core.panorama.targets import TargetResolver
from aksfw_core.pipeline.applier import Applier
from aksfw_core.pipeline.coordination import Coordination
from aksfw_core.pipeline.shared_tables import SharedTables
from aksfw_core.pipeline.state_store import StateStore
from aksfw_core.rules.messages import PANORAMA_TARGET
from aksfw_local.fakes.panorama import Fault, PanoramaSimulator
from tests.support.applier import GROUP, Monitored, monitored, snapshot
from tests.support.panorama import API_KEY, settings_for

NAMES = [f"aks{i}" for i in range(1, 6)]
IDS = {
    name: f"{GROUP}/providers/Microsoft.ContainerService/managedClusters/{name}" for name in NAMES
}
FOREIGN = {"1.1.9.9": {"corp.other"}}


class Clock:
    """The test's clock, shared by every instance."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def version(self) -> int:
        return int(self.now * 1e9)


def wanted(name: str, generation: int = 0) -> dict[str, set[str]]:
    """Cluster `name`'s tags: two IPs of its own, one of them beside a foreign tag."""
    index = NAMES.index(name) + 1
    return {
        f"1.1.{index}.1": {f"aks.{name}.web", f"aks.{name}.svc.gen.{generation}"},
        f"1.1.{index}.2": {f"aks.{name}.api"},
    }


def table_reads(simulator: PanoramaSimulator) -> int:
    """Reads of a whole table so far: each begins with its count."""
    return sum("<option>count" in (call.command or "") for call in simulator.calls)


class Instance:
    """One instance of the app's applier: its own coordination, tables and clients."""

    def __init__(self, store, account, simulator, clock, **limits: float) -> None:
        settings = Limits(**limits)  # type: ignore[arg-type]
        coordination = Coordination(account, clock=clock)

        def client(target: str = PANORAMA_TARGET) -> PanoramaClient:
            serial = None if target == PANORAMA_TARGET else target
            return PanoramaClient(settings_for(simulator, target=serial), api_key(API_KEY))

        self.tables = SharedTables(account, coordination, clock=clock, limits=settings)
        self.applier = Applier(
            store,
            client,
            clusters=Monitored(*(monitored(IDS[name], name) for name in NAMES)),
            targets=TargetResolver(PanoramaTargets(), client),
            lock=lambda cluster_id, target: coordination.apply_lock(cluster_id, target, 15),
            clock=clock,
            tables=self.tables,
        )

    def apply(self, name: str, tags: dict[str, set[str]], clock: Clock, **flags: object):
        return self.applier.apply(snapshot(clock.version(), tags, name, cluster=IDS[name], **flags))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(account) -> StateStore:
    return StateStore(account)


@pytest.fixture
def instance(store, account, panorama, clock) -> Callable[..., Instance]:
    return lambda **limits: Instance(store, account, panorama, clock, **limits)


@pytest.fixture
def converged(instance, panorama, clock) -> Instance:
    """Every cluster applied (each first apply compares: one shared read), a foreign tag
    beside them, and a while later."""
    panorama.seed_many(FOREIGN)
    for name in NAMES:
        panorama.seed(f"1.1.{NAMES.index(name) + 1}.1", ["corp.keep"])
    first = instance()
    for name in NAMES:
        first.apply(name, wanted(name), clock)
    assert table_reads(panorama) == 1  # the first applies too share one read
    clock.now += 600
    panorama.reset_calls()
    return first


def expected(*overrides: tuple[str, dict[str, set[str]]]) -> dict[str, set[str]]:
    """What Panorama holds when each cluster has its `wanted` tags (or the override)."""
    chosen = {name: wanted(name) for name in NAMES} | dict(overrides)
    table: dict[str, set[str]] = {ip: set(tags) for ip, tags in FOREIGN.items()}
    for name, tags in chosen.items():
        table.setdefault(f"1.1.{NAMES.index(name) + 1}.1", set()).add("corp.keep")
        for ip, cluster_tags in tags.items():
            table.setdefault(ip, set()).update(cluster_tags)
    return table


# ---------------------------------------------------------------------- one read per cycle


def test_an_audit_of_every_cluster_on_a_target_reads_its_table_once(
    converged, instance, panorama, clock
):
    panorama.seed("1.1.1.1", ["aks.aks1.stale"])  # drift for one audit to repair
    panorama.seed("1.1.2.2", ["aks.aks2.gone"])
    cycle = clock.now
    clock.now += 1
    second = instance()  # another instance takes some of the cycle's snapshots
    for index, name in enumerate(NAMES):
        applier = converged if index % 2 else second
        applier.apply(name, wanted(name), clock, audit=True, compare_since=cycle)
    assert table_reads(panorama) == 1
    assert panorama.registered() == expected()


def test_two_instances_auditing_one_target_at_once_read_it_once(
    converged, instance, panorama, clock
):
    cycle = clock.now
    clock.now += 1
    panorama.slow_seconds = 1.0
    panorama.inject(Fault.SLOW)  # the first read's count: the other instance comes meanwhile
    instances = [instance(), instance()]
    errors: list[BaseException] = []

    def audit(which: int) -> None:
        try:
            for name in NAMES[which::2]:
                instances[which].apply(name, wanted(name, 1), clock, audit=True,
                                       compare_since=cycle)  # fmt: skip
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=audit, args=(which,)) for which in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert table_reads(panorama) == 1
    assert panorama.registered() == expected(*((n, wanted(n, 1)) for n in NAMES))


# ---------------------------------------------------------------------- exact under races


def test_a_cluster_that_wrote_after_the_read_began_reads_again_and_ends_exact(
    converged, instance, panorama, clock
):
    cycle = clock.now
    clock.now += 1
    converged.apply("aks2", wanted("aks2"), clock, audit=True, compare_since=cycle)  # the read
    # aks1 changes after it: the stored table does not show this write...
    clock.now += 1
    converged.apply("aks1", wanted("aks1", 1) | {"1.1.1.3": {"aks.aks1.new"}}, clock)
    clock.now += 10
    # ...so its audit, of a newer list still, reads the target again, and the tag it
    # registered after the read (no longer wanted) goes.
    converged.apply("aks1", wanted("aks1", 2), clock, audit=True, compare_since=cycle)
    assert table_reads(panorama) == 2
    assert panorama.registered() == expected(("aks1", wanted("aks1", 2)))


def test_tags_of_other_owners_written_after_the_read_are_left_alone(
    converged, instance, panorama, clock
):
    cycle = clock.now
    clock.now += 1
    converged.apply("aks2", wanted("aks2"), clock, audit=True, compare_since=cycle)  # the read
    panorama.seed("1.1.1.1", ["corp.late"])  # another owner, on aks1's address
    panorama.seed("1.1.1.2", ["aks.aks3.moved"])  # another cluster, on aks1's address
    converged.apply("aks1", wanted("aks1", 1), clock, audit=True, compare_since=cycle)
    assert table_reads(panorama) == 1
    held = expected(("aks1", wanted("aks1", 1)))
    held["1.1.1.1"].add("corp.late")
    held["1.1.1.2"].add("aks.aks3.moved")
    assert panorama.registered() == held


def test_an_audit_never_uses_a_table_read_before_it_began(converged, instance, panorama, clock):
    converged.apply("aks2", wanted("aks2"), clock, audit=True, compare_since=clock.now)
    panorama.seed("1.1.1.1", ["aks.aks1.drift"])
    clock.now += 3600
    converged.apply("aks1", wanted("aks1"), clock, audit=True, compare_since=clock.now)
    assert table_reads(panorama) == 2
    assert panorama.registered() == expected()


# ---------------------------------------------------------------------- repairs and races


def test_a_dirty_state_is_repaired_from_a_fresh_shared_table(converged, panorama, clock):
    panorama.inject(Fault.HTTP_500, 3)  # aks1's write fails through every attempt
    with pytest.raises(Retryable):
        converged.apply("aks1", wanted("aks1", 1), clock)
    clock.now += 10
    converged.apply("aks2", wanted("aks2"), clock, audit=True, compare_since=clock.now)
    clock.now += 20  # the read is 20 s old: within limits.sharedTableMaxAgeSeconds
    panorama.reset_calls()
    assert converged.apply("aks1", wanted("aks1", 1), clock).outcome == "applied"
    assert table_reads(panorama) == 0  # the dirty state compared with the stored read
    assert panorama.registered() == expected(("aks1", wanted("aks1", 1)))


def test_a_dirty_state_reads_again_when_the_shared_table_is_too_old(converged, panorama, clock):
    panorama.inject(Fault.HTTP_500, 3)
    with pytest.raises(Retryable):
        converged.apply("aks1", wanted("aks1", 1), clock)
    clock.now += 10
    converged.apply("aks2", wanted("aks2"), clock, audit=True, compare_since=clock.now)
    clock.now += Limits().shared_table_max_age_s + 1
    panorama.reset_calls()
    converged.apply("aks1", wanted("aks1", 1), clock)
    assert table_reads(panorama) == 1
    assert panorama.registered() == expected(("aks1", wanted("aks1", 1)))


def test_a_race_is_settled_from_a_read_made_after_its_writes(
    converged, instance, panorama, clock, monkeypatch
):
    converged.apply("aks2", wanted("aks2"), clock, audit=True, compare_since=clock.now)
    other = instance()
    original = PanoramaClient.apply
    raced: list[object] = []

    def apply_then_race(self, plan):
        result = original(self, plan)
        if not raced:  # while the older snapshot is written, a newer one is saved
            raced.append(None)
            clock.now += 1
            other.applier._lock = lambda cluster_id, target: nullcontext()  # a lapsed lease
            raced[0] = other.apply("aks1", wanted("aks1", 3), clock)
        return result

    monkeypatch.setattr(PanoramaClient, "apply", apply_then_race)
    converged.applier._lock = lambda cluster_id, target: nullcontext()
    panorama.reset_calls()
    clock.now += 1
    assert converged.apply("aks1", wanted("aks1", 2), clock).outcome == "superseded"
    # The stored table (read a moment ago) shows neither applier's writes: the settlement
    # reads the target again, once.
    assert table_reads(panorama) == 1
    assert panorama.registered() == expected(("aks1", wanted("aks1", 3)))


# ---------------------------------------------------------------------- the stored table


def test_a_target_that_forgot_keeps_a_read_in_flight_from_being_stored(
    converged, instance, panorama, clock, monkeypatch
):
    original = PanoramaClient.registered

    def read_then_forget(self):
        found = original(self)
        converged.tables.invalidate(PANORAMA_TARGET)  # the canary, meanwhile
        return found

    monkeypatch.setattr(PanoramaClient, "registered", read_then_forget)
    converged.apply("aks1", wanted("aks1"), clock, audit=True, compare_since=clock.now)
    monkeypatch.setattr(PanoramaClient, "registered", original)
    clock.now += 1
    instance().apply("aks2", wanted("aks2"), clock, audit=True, compare_since=clock.now - 1)
    assert table_reads(panorama) == 2  # nothing read before the target forgot was kept


def test_a_table_too_large_to_store_is_read_by_each_apply_without_waiting(
    converged, instance, panorama, clock
):
    small = instance(shared_table_max_bytes=100, shared_table_wait_s=0.5)
    cycle = clock.now
    for name in NAMES:
        small.apply(name, wanted(name), clock, audit=True, compare_since=cycle)
    assert table_reads(panorama) == len(NAMES)
    assert panorama.registered() == expected()


def test_an_apply_waits_for_another_instances_read_no_longer_than_its_limit(
    converged, instance, panorama, clock
):
    reading = threading.Event()
    release = threading.Event()
    first = instance()

    def slow_read() -> dict[str, frozenset[str]]:
        reading.set()
        release.wait(timeout=30)
        return {}

    reader = threading.Thread(
        target=lambda: first.tables.table(
            PANORAMA_TARGET, slow_read, compare_since=clock.now, wrote_at=None
        )
    )
    reader.start()
    try:
        assert reading.wait(timeout=10)
        impatient = instance(shared_table_wait_s=0.5)
        started = time.monotonic()
        with pytest.raises(Retryable, match="still being read by another applier"):
            impatient.apply("aks1", wanted("aks1"), clock, audit=True, compare_since=clock.now)
        assert 0.5 <= time.monotonic() - started < 10
        assert table_reads(panorama) == 0
    finally:
        release.set()
        reader.join(timeout=30)
