"""Azurite as a subprocess, and the queue trigger host played over it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import azure.functions as func
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient, TextBase64DecodePolicy

from aksfw_local.azurite import Azurite, AzuriteError
from aksfw_local.functions_host import (
    HOST_JSON,
    QueueTriggerHost,
    enqueue,
    load_queue_settings,
    parse_timespan,
    poison_messages,
)

if TYPE_CHECKING:  # imported by pytest_plugins first, so that pytest rewrites its asserts
    from tests.support.azurite_fixtures import Storage

# tests/conftest.py may load it too; this keeps the module runnable on its own.
pytest_plugins = ["tests.support.azurite_fixtures"]


def queue_texts(storage: Storage, queue_name: str) -> list[str]:
    """Decoded texts of the messages visible in the queue (peeked, left in place)."""
    with QueueClient.from_connection_string(
        storage.connection_string, queue_name, message_decode_policy=TextBase64DecodePolicy()
    ) as queue:
        return [str(message.content) for message in queue.peek_messages(max_messages=32)]


def test_azurite_serves_blobs_and_queues(storage: Storage) -> None:
    azurite = storage.azurite
    assert azurite.running
    for port in (azurite.blob_port, azurite.queue_port, azurite.table_port):
        assert f"http://127.0.0.1:{port}/devstoreaccount1" in storage.connection_string

    with BlobServiceClient.from_connection_string(storage.connection_string) as blobs:
        container = blobs.create_container(storage.name("box"))
        container.upload_blob("a.txt", b"hello")
        assert container.download_blob("a.txt").readall() == b"hello"

    enqueue(storage.connection_string, storage.name("q"), "one")
    assert queue_texts(storage, storage.name("q")) == ["one"]


def test_a_message_handled_once_is_deleted(storage: Storage) -> None:
    queue_name = storage.name("jobs")
    message_id = enqueue(storage.connection_string, queue_name, '{"n": 1}')
    seen: list[func.QueueMessage] = []

    with QueueTriggerHost(storage.connection_string, queue_name, seen.append) as host:
        assert host.run_until_idle(timeout_s=5) == 1

    [message] = seen
    assert (message.id, message.dequeue_count, message.get_json()) == (message_id, 1, {"n": 1})
    assert message.insertion_time is not None and message.pop_receipt
    assert [(r.message_id, r.dequeue_count, r.ok, r.poisoned) for r in host.results] == [
        (message_id, 1, True, False)
    ]
    assert queue_texts(storage, queue_name) == []
    assert poison_messages(storage.connection_string, queue_name) == []


def test_a_handler_failing_twice_then_succeeding_sees_dequeue_counts_1_2_3(
    storage: Storage,
) -> None:
    queue_name = storage.name("flaky")
    enqueue(storage.connection_string, queue_name, "retry me")
    counts: list[int | None] = []

    def flaky(message: func.QueueMessage) -> None:
        counts.append(message.dequeue_count)
        assert message.get_body() == b"retry me"
        if len(counts) < 3:
            raise ConnectionError(f"attempt {len(counts)}")

    with QueueTriggerHost(storage.connection_string, queue_name, flaky) as host:
        assert host.run_until_idle(timeout_s=5) == 3

    assert counts == [1, 2, 3]
    assert [(r.dequeue_count, r.ok, r.error) for r in host.results] == [
        (1, False, "ConnectionError('attempt 1')"),
        (2, False, "ConnectionError('attempt 2')"),
        (3, True, None),
    ]
    assert queue_texts(storage, queue_name) == []
    assert poison_messages(storage.connection_string, queue_name) == []


def test_a_handler_always_failing_sends_the_message_to_the_poison_queue(
    storage: Storage,
) -> None:
    queue_name = storage.name("doomed")
    enqueue(storage.connection_string, queue_name, "poison pill ✓")

    def always_fails(message: func.QueueMessage) -> None:
        raise ValueError("bad message")

    # The real user-function path: a queue trigger declared on a FunctionApp.
    app = func.FunctionApp()
    app.queue_trigger(arg_name="msg", queue_name=queue_name, connection="AzureWebJobsStorage")(
        always_fails
    )
    [function] = app.get_functions()
    handler = function.get_user_function()

    with QueueTriggerHost(storage.connection_string, queue_name, handler) as host:
        assert host.max_dequeue_count == 5  # host.json
        assert host.run_until_idle(timeout_s=10) == 5

    assert [r.dequeue_count for r in host.results] == [1, 2, 3, 4, 5]
    assert [r.poisoned for r in host.results] == [False] * 4 + [True]
    assert not any(r.ok for r in host.results)
    assert queue_texts(storage, queue_name) == []
    assert poison_messages(storage.connection_string, queue_name) == ["poison pill ✓"]


def test_a_retry_delay_is_waited_for_only_within_settle_time(storage: Storage) -> None:
    queue_name = storage.name("later")
    enqueue(storage.connection_string, queue_name, "x")
    counts: list[int | None] = []

    def fails_once(message: func.QueueMessage) -> None:
        counts.append(message.dequeue_count)
        if len(counts) == 1:
            raise RuntimeError("not yet")

    with QueueTriggerHost(
        storage.connection_string, queue_name, fails_once, retry_delay_s=1
    ) as host:
        assert host.run_until_idle(timeout_s=5) == 1  # the retry is hidden for 1 s
        assert counts == [1]
        assert host.run_until_idle(timeout_s=5, settle_s=1.5) == 1
    assert counts == [1, 2]


def test_max_dequeue_count_can_be_lowered(storage: Storage) -> None:
    queue_name = storage.name("low")
    enqueue(storage.connection_string, queue_name, "y")

    def fails(message: func.QueueMessage) -> None:
        raise RuntimeError("no")

    with QueueTriggerHost(
        storage.connection_string, queue_name, fails, max_dequeue_count=1
    ) as host:
        host.run_once()
    assert [(r.dequeue_count, r.poisoned) for r in host.results] == [(1, True)]
    assert poison_messages(storage.connection_string, queue_name) == ["y"]


def test_run_until_idle_is_bounded(storage: Storage) -> None:
    queue_name = storage.name("endless")
    enqueue(storage.connection_string, queue_name, "again")

    def requeues(message: func.QueueMessage) -> None:
        enqueue(storage.connection_string, queue_name, "again", create=False)

    with (
        QueueTriggerHost(storage.connection_string, queue_name, requeues) as host,
        pytest.raises(TimeoutError, match=r"not idle after 0\.5 s"),
    ):
        host.run_until_idle(timeout_s=0.5)


@pytest.mark.azurite
def test_restart_keeps_the_ports_and_loses_the_data() -> None:
    with Azurite() as azurite:
        ports = (azurite.blob_port, azurite.queue_port, azurite.table_port)
        first_pid = azurite.pid
        enqueue(azurite.connection_string, "before", "x")

        azurite.restart()

        assert azurite.running and azurite.pid != first_pid
        assert (azurite.blob_port, azurite.queue_port, azurite.table_port) == ports
        assert poison_messages(azurite.connection_string, "never") == []  # it answers
        with (
            QueueClient.from_connection_string(azurite.connection_string, "before") as queue,
            pytest.raises(ResourceNotFoundError),
        ):
            queue.get_queue_properties()  # in-memory data is gone
    assert not azurite.running


def test_a_missing_azurite_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(AzuriteError, match="npm ci"):
        Azurite(executable=tmp_path / "azurite").start()


def test_host_json_settings_are_read() -> None:
    queues = json.loads(HOST_JSON.read_text())["extensions"]["queues"]
    settings = load_queue_settings()
    assert settings.max_dequeue_count == queues["maxDequeueCount"]
    assert settings.visibility_timeout_s == parse_timespan(queues["visibilityTimeout"])
    assert parse_timespan("00:00:30") == 30
    assert parse_timespan("01:02:03.5") == 3723.5
    assert parse_timespan("1.00:00:00") == 86400
    with pytest.raises(ValueError, match="TimeSpan"):
        parse_timespan("30s")


def test_a_message_that_is_not_base64_is_poisoned_without_a_call(storage: Storage) -> None:
    queue_name = storage.name("raw")
    with QueueClient.from_connection_string(storage.connection_string, queue_name) as queue:
        queue.create_queue()
        queue.send_message("not base64!")  # no encode policy: raw text
    calls: list[func.QueueMessage] = []

    with QueueTriggerHost(storage.connection_string, queue_name, calls.append) as host:
        assert host.run_once() == 1

    assert calls == []
    assert [(r.ok, r.poisoned) for r in host.results] == [(False, True)]
    assert poison_messages(storage.connection_string, queue_name) == ["not base64!"]
