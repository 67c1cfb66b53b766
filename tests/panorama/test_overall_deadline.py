"""The retry policy under an overall deadline (`retry.overall_deadline`, the command
line's `--timeout`): no backoff wait that would end past it, and each Panorama request's
own deadline cut to the time left."""

from __future__ import annotations

import time

import pytest

from aksfw_core import retry
from aksfw_core.errors import Retryable
from aksfw_core.retry import RetrySettings, overall_deadline, retrying, time_left


def test_no_wait_would_end_past_the_overall_deadline(monkeypatch):
    waits: list[float] = []

    def pause(seconds: float) -> None:  # really waits: the deadline is measured
        waits.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(retry, "pause", pause)
    settings = RetrySettings(attempts=50, initial_wait_s=0.2, max_wait_s=0.2)
    calls = 0
    with overall_deadline(0.5) as bound, pytest.raises(Retryable) as raised:
        for attempt in retrying(settings, "call"):
            with attempt:
                calls += 1
                raise Retryable("down")
    # Full jitter may draw a short first wait; none may end past the deadline.
    assert sum(waits) <= 0.5 and calls == len(waits) + 1 < 50
    assert bound.stopped and bound.reached()
    assert raised.value.attempts == calls


def test_without_an_overall_deadline_attempts_run_out_as_before(monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(retry, "pause", waits.append)
    with pytest.raises(Retryable):
        for attempt in retrying(RetrySettings(attempts=3), "call"):
            with attempt:
                raise Retryable("down")
    assert len(waits) == 2


def test_time_left_cuts_a_requests_own_bound():
    assert time_left(30.0) == 30.0
    with overall_deadline(2.0):
        assert 1.5 < time_left(30.0) <= 2.0
        assert time_left(0.5) == 0.5
    with overall_deadline(0.01):
        time.sleep(0.02)
        assert time_left(30.0) == 0.001
