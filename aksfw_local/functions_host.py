"""The Azure Functions host's queue trigger, played over Azurite for one queue.

The Functions host (`func`) cannot run in the tests, so `QueueTriggerHost` does what its
queue trigger does with a message: receive it (hidden from other readers meanwhile), call
the function, delete the message when the function returns, and when it raises either
make the message visible again for another try or, at `maxDequeueCount`, move it to
`<queue>-poison`. Settings come from the repo's host.json (`extensions.queues`).

    host = QueueTriggerHost(connection_string, "jobs", handler, retry_delay_s=0)
    host.run_until_idle(timeout_s=5)
    assert [r.ok for r in host.results] == [True]

Messages travel base64-encoded (host.json `messageEncoding: base64`): `enqueue()` writes
them so, and the handler gets the decoded bytes as `azure.functions.QueueMessage.body`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import inspect
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import azure.functions as func
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage as TriggerMessage
from azure.storage.queue import QueueClient
from azure.storage.queue import QueueMessage as StorageQueueMessage

HOST_JSON = Path(__file__).resolve().parent.parent / "host.json"

DEFAULT_MAX_DEQUEUE_COUNT = 5  # the host's default
DEFAULT_LOCK_S = 600.0  # the host hides a message it processes for 10 minutes by default
POLL_INTERVAL_S = 0.1
MAX_BATCH = 32  # the Queue service's limit for one receive

# Bounded SDK calls: no long retry chains against an emulator that is down.
CLIENT_OPTIONS: dict[str, Any] = {"retry_total": 2, "connection_timeout": 5, "read_timeout": 30}

Handler = Callable[[func.QueueMessage], object]

_TIMESPAN = re.compile(r"^(?:(?P<days>\d+)\.)?(?P<h>\d+):(?P<m>\d{1,2}):(?P<s>\d{1,2}(?:\.\d+)?)$")


def parse_timespan(text: str) -> float:
    """Seconds in a .NET TimeSpan as host.json writes it: "HH:MM:SS", "d.HH:MM:SS[.fff]"."""
    match = _TIMESPAN.match(text.strip())
    if match is None:
        raise ValueError(f"not a TimeSpan like 00:00:30: {text!r}")
    days = int(match["days"] or 0)
    return ((days * 24 + int(match["h"])) * 60 + int(match["m"])) * 60 + float(match["s"])


@dataclass(frozen=True)
class QueueSettings:
    """`extensions.queues` of host.json, as far as the trigger here uses it."""

    max_dequeue_count: int = DEFAULT_MAX_DEQUEUE_COUNT
    visibility_timeout_s: float = 0.0
    batch_size: int = 16
    message_encoding: str = "base64"


def load_queue_settings(path: Path = HOST_JSON) -> QueueSettings:
    queues = json.loads(path.read_text(encoding="utf-8")).get("extensions", {}).get("queues", {})
    visibility = queues.get("visibilityTimeout")
    return QueueSettings(
        max_dequeue_count=int(queues.get("maxDequeueCount", DEFAULT_MAX_DEQUEUE_COUNT)),
        visibility_timeout_s=parse_timespan(visibility) if visibility else 0.0,
        batch_size=int(queues.get("batchSize", 16)),
        message_encoding=str(queues.get("messageEncoding", "base64")).lower(),
    )


@dataclass(frozen=True)
class Result:
    """What became of one delivery of one message."""

    message_id: str
    dequeue_count: int
    ok: bool
    error: str | None  # repr() of the exception the handler raised
    poisoned: bool  # moved to <queue>-poison after this delivery
    body: bytes = b""


def poison_queue_name(queue_name: str) -> str:
    return f"{queue_name}-poison"


def _queue_client(connection_string: str, queue_name: str) -> QueueClient:
    # No encode/decode policies: the raw (base64) text goes to the poison queue unchanged.
    return QueueClient.from_connection_string(connection_string, queue_name, **CLIENT_OPTIONS)


def _decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def enqueue(
    connection_string: str, queue_name: str, body: str | bytes, *, create: bool = True
) -> str:
    """Send one message as a producer would for the host: base64 text. Returns its id."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    with _queue_client(connection_string, queue_name) as queue:
        if create:
            _create_queue(queue)
        return str(queue.send_message(base64.b64encode(data).decode("ascii")).id)


def poison_messages(connection_string: str, queue_name: str) -> list[str]:
    """The decoded texts in `<queue_name>-poison` (peeked: up to 32, left in place)."""
    with _queue_client(connection_string, poison_queue_name(queue_name)) as poison:
        try:
            peeked = poison.peek_messages(max_messages=MAX_BATCH)
        except ResourceNotFoundError:
            return []
    texts = []
    for message in peeked:
        raw = str(message.content)
        data = _decode(raw)
        texts.append(raw if data is None else data.decode("utf-8", "replace"))
    return texts


def _create_queue(queue: QueueClient) -> None:
    with contextlib.suppress(ResourceExistsError):
        queue.create_queue()


class QueueTriggerHost:
    """A queue trigger for `queue_name` calling `handler`, as the Functions host would.

    - `max_dequeue_count` (host.json `maxDequeueCount`, default 5): a message whose handler
      raised on its `max_dequeue_count`-th delivery goes to `<queue>-poison`; one delivered
      more often than that (e.g. after a crash) goes there without calling the handler.
    - `visibility_timeout_s` (host.json `visibilityTimeout`): how long a received message
      stays hidden while it is processed (10 minutes when host.json gives 0 or nothing).
      NB: in the real host, `visibilityTimeout` is the delay before a failed message is
      retried; here that is `retry_delay_s` (default 0: retried at once), which tests
      that want the real behaviour set to `load_queue_settings().visibility_timeout_s`.
    - `retry_delay_s`: a failed message becomes visible again that long after its pass
      (rounded up to whole seconds, the Queue service's unit).

    Everything runs in the caller's thread: no thread, no process to stop. `close()` (or
    `with`) releases the HTTP connections.
    """

    def __init__(
        self,
        connection_string: str,
        queue_name: str,
        handler: Handler,
        *,
        max_dequeue_count: int | None = None,
        visibility_timeout_s: float | None = None,
        retry_delay_s: float = 0.0,
        settings: QueueSettings | None = None,
    ) -> None:
        settings = settings or load_queue_settings()
        if settings.message_encoding != "base64":
            raise ValueError(f"only base64 message encoding is played: {settings!r}")
        self.connection_string = connection_string
        self.queue_name = queue_name
        self.poison_queue_name = poison_queue_name(queue_name)
        self.handler = handler
        self.max_dequeue_count = (
            settings.max_dequeue_count if max_dequeue_count is None else max_dequeue_count
        )
        lock = (
            settings.visibility_timeout_s if visibility_timeout_s is None else visibility_timeout_s
        )
        self.visibility_timeout_s = lock if lock > 0 else DEFAULT_LOCK_S
        self.retry_delay_s = retry_delay_s
        self.batch_size = max(1, min(settings.batch_size, MAX_BATCH))
        self.results: list[Result] = []
        self._queue = _queue_client(connection_string, queue_name)
        self._poison: QueueClient | None = None

    # -- one delivery --------------------------------------------------------------------

    def _receive(self) -> list[StorageQueueMessage]:
        try:
            return list(
                self._queue.receive_messages(
                    messages_per_page=self.batch_size,
                    max_messages=self.batch_size,
                    visibility_timeout=max(1, math.ceil(self.visibility_timeout_s)),
                )
            )
        except ResourceNotFoundError:
            return []  # the queue does not exist yet: nothing to do, like the host

    @staticmethod
    def trigger_message(message: StorageQueueMessage, body: bytes) -> func.QueueMessage:
        """What the Python worker hands the function. `func.QueueMessage` itself takes no
        dequeue count or times: the worker builds its subclass in azure.functions.queue."""
        return TriggerMessage(  # type: ignore[no-untyped-call]
            id=message.id,
            body=body,
            dequeue_count=message.dequeue_count,
            pop_receipt=message.pop_receipt,
            insertion_time=message.inserted_on,
            expiration_time=message.expires_on,
            time_next_visible=message.next_visible_on,
        )

    def _invoke(self, trigger_message: func.QueueMessage) -> None:
        result = self.handler(trigger_message)
        if inspect.iscoroutine(result):  # an `async def` function
            asyncio.run(result)

    def _to_poison(self, message: StorageQueueMessage) -> None:
        if self._poison is None:
            self._poison = _queue_client(self.connection_string, self.poison_queue_name)
            _create_queue(self._poison)
        self._poison.send_message(message.content)
        self._delete(message)

    def _delete(self, message: StorageQueueMessage) -> None:
        # Failing means its lock ran out and someone else has it (new pop receipt), or it
        # is gone: the host logs that and goes on; the message may be delivered again.
        with contextlib.suppress(ResourceNotFoundError, HttpResponseError):
            self._queue.delete_message(message.id, message.pop_receipt)

    def _release(self, message: StorageQueueMessage) -> None:
        """Make a failed message visible again after `retry_delay_s`."""
        # As in _delete, failing means its lock ran out: it is visible already.
        with contextlib.suppress(ResourceNotFoundError, HttpResponseError):
            self._queue.update_message(
                message.id,
                message.pop_receipt,
                visibility_timeout=max(0, math.ceil(self.retry_delay_s)),
            )

    def _process(self, message: StorageQueueMessage, failed: list[StorageQueueMessage]) -> None:
        count = int(message.dequeue_count or 0)
        raw = str(message.content)
        body = _decode(raw)
        if body is None:
            # The host cannot decode it with messageEncoding base64: poison it untouched.
            self._to_poison(message)
            error = "ValueError('message is not base64: not invoked')"
            self._record(message, count, False, error, True, raw.encode("utf-8", "replace"))
            return
        if count > self.max_dequeue_count:
            self._to_poison(message)
            error = (
                f"RuntimeError('dequeue count {count} > maxDequeueCount "
                f"{self.max_dequeue_count}: not invoked')"
            )
            self._record(message, count, False, error, True, body)
            return
        # Built outside the try: a bug here is not a failure of the function.
        trigger_message = self.trigger_message(message, body)
        try:
            self._invoke(trigger_message)
        except Exception as error:  # the function failed: what the host catches
            poisoned = count >= self.max_dequeue_count
            if poisoned:
                self._to_poison(message)
            else:
                failed.append(message)
            self._record(message, count, False, repr(error), poisoned, body)
            return
        self._delete(message)
        self._record(message, count, True, None, False, body)

    def _record(
        self,
        message: StorageQueueMessage,
        count: int,
        ok: bool,
        error: str | None,
        poisoned: bool,
        body: bytes,
    ) -> None:
        self.results.append(Result(str(message.id), count, ok, error, poisoned, body))

    # -- passes --------------------------------------------------------------------------

    def _pass(self, deadline: float | None) -> int:
        """Receive until the queue shows nothing; failed messages stay hidden until the end
        of the pass, so each message is tried at most once per pass."""
        failed: list[StorageQueueMessage] = []
        handled = 0
        try:
            while deadline is None or time.monotonic() < deadline:
                batch = self._receive()
                if not batch:
                    break
                for message in batch:
                    self._process(message, failed)
                    handled += 1
        finally:
            for message in failed:
                self._release(message)
        return handled

    def run_once(self) -> int:
        """Try every message visible now (and any that arrive meanwhile) once; returns how
        many deliveries were handled, failed ones included."""
        return self._pass(deadline=None)

    def run_until_idle(self, timeout_s: float = 10.0, settle_s: float = 0.0) -> int:
        """Pass after pass until the queue shows no message (none is in flight between
        passes). Messages hidden until later (retry delay, delayed sends) are waited for
        only if they come within `settle_s` of quiet. Raises TimeoutError after
        `timeout_s`. Returns the number of deliveries handled."""
        start = time.monotonic()
        deadline = start + timeout_s
        total = 0
        quiet_since: float | None = None
        while True:
            handled = self._pass(deadline)
            total += handled
            now = time.monotonic()
            if handled:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            if quiet_since is not None and now - quiet_since >= settle_s:
                return total
            if now >= deadline:
                raise TimeoutError(
                    f"queue {self.queue_name!r} not idle after {timeout_s:.1f} s: "
                    f"{total} deliveries handled, {self._approximate_count()} message(s) "
                    f"still in it; last results: {self.results[-3:]!r}"
                )
            if not handled:
                time.sleep(min(POLL_INTERVAL_S, max(0.0, deadline - now)))

    def _approximate_count(self) -> str:
        try:
            return str(self._queue.get_queue_properties().approximate_message_count)
        except HttpResponseError as error:
            return f"? ({error.__class__.__name__})"

    # -- resources -----------------------------------------------------------------------

    def close(self) -> None:
        self._queue.close()
        if self._poison is not None:
            self._poison.close()

    def __enter__(self) -> QueueTriggerHost:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
