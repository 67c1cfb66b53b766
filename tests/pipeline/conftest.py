"""Fixtures of the pipeline's tests: a storage account of the test's own on Azurite."""

from __future__ import annotations

import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from aksfw_core.pipeline.storage import StorageAccount, StorageNames


@pytest.fixture
def account(storage):
    """The app's storage account, its queues and container named for this test."""
    names = StorageNames(storage.name("resync"), storage.name("updates"), storage.name("state"))
    return StorageAccount(
        QueueServiceClient.from_connection_string(storage.connection_string),
        BlobServiceClient.from_connection_string(storage.connection_string),
        names,
    )
