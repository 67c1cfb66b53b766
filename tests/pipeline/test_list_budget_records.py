"""The list budgets as Azurite keeps them (`pipeline.list_budgets`): one decision wins
across concurrent instances, a list in flight is seen by every instance, an unreadable
record counts as a full bucket; and the timer's bounded fan-out (`MessageQueues.send_all`)
sends each message once, a bounded number at a time, the others despite a failure."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from aksfw_core.errors import Retryable
from aksfw_core.limits import Limits
from aksfw_core.pipeline.list_budget import Step
from aksfw_core.pipeline.list_budgets import ListBudgets
from aksfw_core.pipeline.queues import MessageQueues
from aksfw_core.pipeline.state import cluster_key
from aksfw_core.rules.messages import ResyncRequest, decode
from tests.support.applier import CLUSTER

LIMITS = Limits(resync_burst_lists=3, resync_refill_s=2.0)


def test_concurrent_changes_on_two_instances_queue_one_list(account):
    first, second = ListBudgets(account, LIMITS), ListBudgets(account, LIMITS)
    with ThreadPoolExecutor(max_workers=8) as pool:
        steps = list(
            pool.map(lambda i: (first if i % 2 else second).change(CLUSTER).step, range(16))
        )
    assert steps.count(Step.LIST_NOW) == 1
    assert set(steps) == {Step.LIST_NOW, Step.COVERED}


def test_a_list_in_flight_on_one_instance_gets_one_more_from_another(account):
    lister, other = ListBudgets(account, LIMITS), ListBudgets(account, LIMITS)
    assert lister.change(CLUSTER).step is Step.LIST_NOW
    begun = lister.begin(CLUSTER)
    assert begun.lists and begun.lister is not None
    assert [other.change(CLUSTER).step for _ in range(3)] == [
        Step.ONE_MORE,
        Step.COVERED,
        Step.COVERED,
    ]
    after = lister.end(CLUSTER, begun, listed=True)
    assert after.step is Step.LIST_NOW  # the burst still holds a token
    assert other.change(CLUSTER).step is Step.COVERED  # that list is queued
    again = other.begin(CLUSTER)
    assert other.end(CLUSTER, again, listed=True).step is Step.NOTHING
    assert lister.change(CLUSTER).step is Step.LIST_NOW  # idle again


def test_a_follow_up_that_a_list_begun_after_it_covers_lists_nothing(account):
    budgets = ListBudgets(account, LIMITS)
    budgets.change(CLUSTER)
    begun = budgets.begin(CLUSTER)
    assert begun.lister is not None
    follow_up = budgets.begin(CLUSTER, follow_up_of=time.time() - 5)
    assert not follow_up.lists and follow_up.decision is not None
    assert follow_up.decision.step is Step.COVERED
    assert budgets.end(CLUSTER, begun, listed=True).step is Step.NOTHING
    assert budgets.begin(CLUSTER, follow_up_of=time.time()).lists  # idle: it lists


def test_a_list_that_could_not_be_queued_is_given_back(account):
    budgets = ListBudgets(account, LIMITS)
    decision = budgets.change(CLUSTER)
    budgets.withdraw(CLUSTER, decision)
    assert budgets.change(CLUSTER).step is Step.LIST_NOW  # not covered by a lost message


def test_an_unreadable_record_counts_as_a_full_bucket(account):
    budgets = ListBudgets(account, LIMITS)
    budgets.change(CLUSTER)
    blob = account.container.get_blob_client(f"claims/lists/{cluster_key(CLUSTER)}")
    assert blob.exists()
    blob.set_blob_metadata({"tokens": "inf", "at": "x", "due": "nan"})
    assert budgets.change(CLUSTER).step is Step.LIST_NOW


def test_a_resync_of_something_that_is_no_cluster_lists_unbudgeted(account):
    begun = ListBudgets(account, LIMITS).begin("/subscriptions/x/resourceGroups/y")
    assert begun.lists and begun.lister is None


def test_a_list_no_change_asked_for_writes_nothing(account):
    budgets = ListBudgets(account, LIMITS)
    begun = budgets.begin(CLUSTER)  # the timer's resync of a quiet cluster
    assert begun.lists and begun.lister is None
    assert not account.container.get_blob_client(f"claims/lists/{cluster_key(CLUSTER)}").exists()
    assert budgets.end(CLUSTER, begun, listed=True).step is Step.NOTHING
    assert budgets.change(CLUSTER).step is Step.LIST_NOW  # a change then lists at once


class CountingQueues(MessageQueues):
    """Queues that count sends in flight, and refuse one cluster's."""

    def __init__(self, account, refused: str | None = None) -> None:
        super().__init__(account)
        self.refused = refused
        self.inside = 0
        self.most = 0
        self._lock = threading.Lock()

    def send(self, message, delay_s: int = 0) -> None:
        with self._lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
        try:
            time.sleep(0.02)
            if message.cluster_id == self.refused:
                raise Retryable("storage said no")
            super().send(message, delay_s)
        finally:
            with self._lock:
                self.inside -= 1


def received(account) -> list[str]:
    found = []
    client = account.queue(account.names.resync_queue)
    while batch := list(client.receive_messages(max_messages=32, visibility_timeout=60)):
        for message in batch:
            request = decode(message.content)
            assert isinstance(request, ResyncRequest)
            found.append(request.cluster_id)
    return found


def cluster(index: int) -> str:
    return CLUSTER.replace("/aks1", f"/aks{index:03d}")


def test_the_fan_out_sends_each_message_once_a_bounded_number_at_a_time(account):
    queues = CountingQueues(account)
    requests = [ResyncRequest(cluster(i), "timer") for i in range(60)]
    queues.send_all(requests, concurrency=4)
    assert 1 < queues.most <= 4
    assert sorted(received(account)) == sorted(r.cluster_id for r in requests)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_failed_send_of_the_fan_out_leaves_the_others_sent_and_is_raised(account, concurrency):
    queues = CountingQueues(account, refused=cluster(7))
    requests = [ResyncRequest(cluster(i), "timer") for i in range(20)]
    with pytest.raises(Retryable, match="storage said no"):
        queues.send_all(requests, concurrency=concurrency)
    assert queues.most <= concurrency
    assert sorted(received(account)) == sorted(c.cluster_id for c in requests if c != requests[7])
