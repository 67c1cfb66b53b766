"""The fake Resource Manager as the Azure tests use it: its token, one monitored cluster in
it (`cluster_arm`), Resource Manager events about a resource (`resource_event`), and
azure-core's own retries without their waits (`no_sdk_backoff`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from azure.core.pipeline.policies import RetryPolicy

from aksfw_local.fakes.arm import FakeArm
from tests.support.flow import NODE_GROUP, SUB

ARM_TOKEN = "arm-dev-token"
"""The bearer token the fake accepts (`FakeArm(token=ARM_TOKEN)`, `StaticToken(ARM_TOKEN)`)."""


def no_sdk_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """azure-core's own retries of 429/5xx do not sleep in tests."""
    monkeypatch.setattr(RetryPolicy, "get_backoff_time", lambda self, settings: 0.0)


@contextmanager
def cluster_arm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeArm]:
    """A fake Resource Manager (one item a page) holding the cluster `aks-prod1` of
    `rg-prod` with its node resource group `NODE_GROUP`, trusted by the SDK's clients; it
    must have answered every request without an error of its own."""
    no_sdk_backoff(monkeypatch)
    with FakeArm(token=ARM_TOKEN, page_size=1) as fake:
        bundle = tmp_path / "ca.pem"
        bundle.write_bytes(fake.ca_pem or b"")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        fake.add_cluster(SUB, "rg-prod", "aks-prod1", node_resource_group=NODE_GROUP)
        yield fake
    assert fake.errors == []


def resource_event(verb: str, subject: str, operation: str) -> dict[str, object]:
    """A `Microsoft.Resources.Resource<verb>Success` event (Event Grid schema) about the
    resource `subject`, with `data.operationName` `operation`."""
    return {
        "id": str(uuid.uuid4()),
        "subject": subject,
        "eventType": f"Microsoft.Resources.Resource{verb}Success",
        "topic": f"/subscriptions/{SUB}",
        "data": {"operationName": operation},
        "dataVersion": "2",
    }
