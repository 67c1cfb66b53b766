"""Key Vault faults through the whole app, for a cluster reached with a `token` credential
(its service-account token is a Key Vault secret): a vault that cannot be reached is a
transient fault (the message returns to the queue), a vault that refuses the app's
identity (403) can never succeed (poisoned at once). Either way nothing is listed, so
nothing is removed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from azure.core.pipeline.policies import RetryPolicy
from azure.keyvault.secrets._shared import http_challenge_cache

from aksfw_core import functions
from aksfw_local.fakes.keyvault import FakeKeyVault
from aksfw_local.functions_host import poison_messages
from aksfw_local.stack import LocalStack
from tests.support.faults import (
    AFTER,
    BEFORE,
    FOREIGN,
    RETRIED_THEN_POISONED,
    converge,
    merged,
    owned_tags,
)
from tests.support.flow import CLUSTER, DONE, POISONED
from tests.support.queues import RESYNCS, UPDATES

SECRET = "aks-prod1-token"


@pytest.fixture
def vault(world: LocalStack, tmp_path, monkeypatch) -> Iterator[FakeKeyVault]:
    """aks-prod1 is reached with a `token` credential whose secret is in this vault."""
    fake = FakeKeyVault(token=world.arm.token, tls_dir=tmp_path / "vault-tls")  # kept on restart
    with fake:
        url = fake.url  # a test may leave the vault stopped
        http_challenge_cache.remove_challenge_for_url(url)
        fake.set_secret(SECRET, "kube-token")
        bundle = tmp_path / "ca-bundle.pem"
        bundle.write_bytes(world.arm.ca_pem + fake.ca_pem)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        config = json.loads(os.environ["AKSFW_CONFIG"])
        config["keyVault"] = fake.url
        credential = {"kind": "token", "server": world.kube.url, "secret": SECRET,
                      "ca": world.kube.ca_pem.decode()}  # fmt: skip
        config["clusters"] = [{"id": CLUSTER, "credential": credential}]
        monkeypatch.setenv("AKSFW_CONFIG", json.dumps(config))
        functions.application.cache_clear()
        # azure-core's own retries (retry_total=3) must not sleep in tests either.
        monkeypatch.setattr(RetryPolicy, "get_backoff_time", lambda self, settings: 0.0)
        yield fake
        http_challenge_cache.remove_challenge_for_url(url)
    assert fake.errors == []


def secret_reads(vault: FakeKeyVault) -> int:
    return sum(1 for r in vault.requests if r.authorized and r.path.startswith("/secrets/"))


def converge_through_the_vault(world: LocalStack, vault: FakeKeyVault) -> None:
    converge(world)
    assert secret_reads(vault) == 1  # the token came from the vault


def change_and_drain(world: LocalStack) -> None:
    functions.application.cache_clear()  # a new instance: the token is read again
    world.kube.services = list(AFTER)
    world.event("lb-write.eventgrid.json")  # its own resync fails: it queues one
    world.drain()


def recover(world: LocalStack, deliveries: list) -> None:
    deliveries.clear()
    assert world.http("POST", "resync", b"{}").status_code == 202
    world.drain()
    assert [(d.queue, d.outcome) for d in deliveries] == [(RESYNCS, DONE), (UPDATES, DONE)]
    assert world.registered() == merged(FOREIGN, owned_tags(AFTER))


def test_key_vault_unreachable_returns_the_resync_to_the_queue_and_removes_nothing(
    world, vault, deliveries
):
    converge_through_the_vault(world, vault)
    converged = world.applied()
    deliveries.clear()
    vault.stop()

    change_and_drain(world)
    path = tuple(d.outcome for d in deliveries)
    assert [d.queue for d in deliveries] == [RESYNCS] * 5 and path == RETRIED_THEN_POISONED
    assert [d.dequeue_count for d in deliveries] == [1, 2, 3, 4, 5]
    assert all(d.kube_requests == 0 and d.panorama_writes == 0 for d in deliveries)
    assert world.registered() == merged(FOREIGN, owned_tags(BEFORE))
    assert world.applied() == converged
    assert len(poison_messages(world.connection_string, RESYNCS)) == 1

    vault.start()
    recover(world, deliveries)


def test_key_vault_403_poisons_the_resync_at_once_and_removes_nothing(world, vault, deliveries):
    converge_through_the_vault(world, vault)
    converged = world.applied()
    deliveries.clear()
    vault.inject(403, count=100, path_contains="/secrets/", code="Forbidden")
    reads = secret_reads(vault)

    change_and_drain(world)
    assert [(d.queue, d.dequeue_count, d.outcome) for d in deliveries] == [
        (RESYNCS, 1, POISONED)
    ], deliveries
    assert secret_reads(vault) - reads == 1  # the delivery's one read: no retry
    assert deliveries[0].kube_requests == 0 and deliveries[0].panorama_writes == 0
    assert world.registered() == merged(FOREIGN, owned_tags(BEFORE))
    assert world.applied() == converged
    assert len(poison_messages(world.connection_string, RESYNCS)) == 1

    vault.clear_faults()
    recover(world, deliveries)
