"""The one classification of HTTP failures and the one Retry-After parser, and that every
adapter's errors carry the status they came from."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from aksfw_core.errors import AuthError, NonRetryable, Retryable, http_error, retry_after_seconds
from aksfw_core.panorama import xmlapi


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, AuthError),
        (403, AuthError),
        (429, Retryable),
        (500, Retryable),
        (503, Retryable),
        (0, Retryable),  # no answer at all
        (400, NonRetryable),
        (404, NonRetryable),
        (409, NonRetryable),
    ],
)
def test_one_rule_classifies_every_status(status, kind):
    error = http_error(status, "call", retry_after=3.0 if kind is Retryable else None)
    assert type(error) is kind
    assert error.status == (status or None)
    if kind is Retryable:
        assert isinstance(error, Retryable) and error.retry_after == 3.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, None), ("7", 7.0), (" 12 ", 12.0), ("soon", None), ("-1", None)],
)
def test_retry_after_seconds_and_unreadable_values(value, seconds):
    assert retry_after_seconds(value) == seconds


def test_retry_after_as_an_http_date():
    now = 1_800_000_000.0
    assert retry_after_seconds(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30)
    assert retry_after_seconds(formatdate(now - 30, usegmt=True), now=now) == 0.0


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (503, b"<html/>", Retryable),
        (403, b'<response status="error" code="403"/>', AuthError),
        (200, b'<response status="error" code="22"><msg>timed out</msg></response>', Retryable),
        (400, b'<response status="error" code="17"><msg>bad</msg></response>', NonRetryable),
    ],
)
def test_panorama_errors_carry_their_http_status(status, body, kind):
    with pytest.raises(kind) as caught:
        xmlapi.parse_response(status, body)
    assert caught.value.status == status
