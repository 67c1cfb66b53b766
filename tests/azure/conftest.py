"""Fixtures of the Azure wing's tests: the fake Resource Manager, trusted like a private CA."""

from __future__ import annotations

import pytest

from aksfw_local.fakes.arm import FakeArm
from tests.support.arm import ARM_TOKEN


@pytest.fixture
def trust(monkeypatch, tmp_path):
    """Make the Azure SDK (requests) trust the fakes' CAs, as a private CA would be."""
    bundle = tmp_path / "ca-bundle.pem"

    def add(*fakes):
        bundle.write_bytes(b"".join(fake.ca_pem for fake in fakes))
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))

    return add


@pytest.fixture
def arm(trust):
    with FakeArm(token=ARM_TOKEN) as fake:
        trust(fake)
        yield fake
    assert fake.errors == []
