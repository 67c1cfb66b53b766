"""Pytest fixtures for Azurite, a plugin that `tests/conftest.py` loads (`pytest_plugins`).

- `azurite` (session): one Azurite for the whole run, started by the first test that
  asks for it (tests that do not use it never start it), stopped at the end.
- `storage` (function): the connection string and a prefix unique to the test, for the
  names of its queues and containers; those are deleted after the test.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from aksfw_local.azurite import Azurite

CLIENT_OPTIONS: dict[str, Any] = {"retry_total": 1, "connection_timeout": 5, "read_timeout": 15}


@dataclass(frozen=True)
class Storage:
    """Where a test keeps its data: Azurite's account, under names starting with `prefix`."""

    connection_string: str
    prefix: str  # "t" + 10 hex digits: valid at the start of queue and container names
    azurite: Azurite

    def name(self, suffix: str) -> str:
        """A queue or container name of this test: `<prefix>-<suffix>`."""
        return f"{self.prefix}-{suffix}"


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    with Azurite() as emulator:
        yield emulator


@pytest.fixture
def storage(azurite: Azurite) -> Iterator[Storage]:
    if not azurite.running:  # a test before stopped it: later ones still get storage
        azurite.start()
    namespace = Storage(azurite.connection_string, f"t{uuid.uuid4().hex[:10]}", azurite)
    yield namespace
    if azurite.running:
        delete_prefixed(namespace.connection_string, namespace.prefix)


def delete_prefixed(connection_string: str, prefix: str) -> None:
    """Delete the queues and blob containers whose names start with `prefix`."""
    with QueueServiceClient.from_connection_string(connection_string, **CLIENT_OPTIONS) as qs:
        # Names first, deletes after: deleting while paging could skip some.
        for name in [queue.name for queue in qs.list_queues(name_starts_with=prefix)]:
            with contextlib.suppress(ResourceNotFoundError):
                qs.delete_queue(name)
    with BlobServiceClient.from_connection_string(connection_string, **CLIENT_OPTIONS) as bs:
        for name in [container.name for container in bs.list_containers(name_starts_with=prefix)]:
            with contextlib.suppress(ResourceNotFoundError):
                bs.delete_container(name)
