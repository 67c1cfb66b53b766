"""TLS verification failures through the whole app: a server certificate from a CA the
client does not trust, one for another host name, and an expired one, on Panorama and on
a cluster's Kubernetes API server; and Panorama's own self-signed certificate trusted by
a pin (`panorama.certificateSha256`) through the queue function.

A certificate that fails verification fails the same way on every try (DESIGN 6: never
retry a fault that repeats), so each is one connection, not retried inside the call, and
the message is poisoned on its first delivery. Nothing is unregistered meanwhile.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aksfw_core import functions
from aksfw_core.config import CA_CERTIFICATES_SETTING
from aksfw_local.fakes.kube_api import FakeKubeApi
from aksfw_local.fakes.panorama import PanoramaSimulator
from aksfw_local.fakes.server import FakeServer
from aksfw_local.fakes.tls import (
    CertificateAuthority,
    CertProblem,
    accepted_connections,
    new_certificate_authority,
    sha256_fingerprint,
    write_self_signed,
    write_tls_material,
)
from aksfw_local.functions_host import poison_messages
from aksfw_local.stack import LocalStack
from tests.support.faults import AFTER, BEFORE, FOREIGN, converge, merged, owned_tags
from tests.support.flow import DONE, NODE_GROUP, POISONED, SUB
from tests.support.panorama import API_KEY
from tests.support.queues import RESYNCS, UPDATES

PROBLEMS = pytest.mark.parametrize("problem", list(CertProblem), ids=lambda p: p.value)


@dataclass(frozen=True)
class Tls:
    """The TLS material directory of one fake and the CA its clients trust."""

    directory: Path
    ca: CertificateAuthority

    @property
    def connections(self) -> int:
        """Connections the fake has accepted so far with this directory's certificate."""
        return accepted_connections(self.directory / "server.pem")

    def serve(self, fake: FakeServer, problem: CertProblem | None = None) -> None:
        """Restart `fake` (same port) presenting a good certificate, or one with `problem`."""
        fake.stop()
        write_tls_material(self.directory, self.ca, problem)
        fake.start()


@pytest.fixture
def panorama_tls(tmp_path: Path) -> Tls:
    return Tls(tmp_path / "panorama-tls", new_certificate_authority("panorama test CA"))


@pytest.fixture
def panorama(panorama_tls: Tls) -> Iterator[PanoramaSimulator]:
    """Overrides conftest's simulator: this one speaks HTTPS, with `panorama_tls`."""
    simulator = PanoramaSimulator(api_key=API_KEY, tls_dir=panorama_tls.directory)
    write_tls_material(panorama_tls.directory, panorama_tls.ca)  # a CA the test keeps
    with simulator:
        yield simulator
    assert simulator.errors == []


@pytest.fixture
def trusted_panorama(world: LocalStack, panorama_tls: Tls, monkeypatch) -> Tls:
    """The app trusts Panorama's CA through `PANORAMA_CA_CERTIFICATES`, the app setting that
    is a Key Vault reference in Azure (`panorama.caCertificates`)."""
    monkeypatch.setenv(CA_CERTIFICATES_SETTING, panorama_tls.ca.pem.decode())
    functions.application.cache_clear()
    return panorama_tls


def _pin(world: LocalStack, monkeypatch, fingerprint: str) -> None:
    config = json.loads(os.environ["AKSFW_CONFIG"])
    config["panorama"]["certificateSha256"] = fingerprint
    monkeypatch.setenv("AKSFW_CONFIG", json.dumps(config))
    functions.application.cache_clear()


def test_a_pinned_self_signed_panorama_is_written_and_a_new_certificate_writes_nothing(
    world, panorama_tls, deliveries, monkeypatch
):
    """Out of the box a Panorama shows a self-signed certificate for a name that is not
    the address used: the app pins it. When the device's certificate changes, every
    update is poisoned on its first connection and nothing is sent, until the new pin."""
    world.panorama.stop()
    material = write_self_signed(panorama_tls.directory, "PA-Panorama")
    world.panorama.start()
    _pin(world, monkeypatch, sha256_fingerprint(material.cert_file))  # AB:CD:... as printed
    converge(world)
    assert world.registered() == merged(FOREIGN, owned_tags(BEFORE))

    world.panorama.stop()
    renewed = write_self_signed(panorama_tls.directory, "PA-Panorama")
    world.panorama.start()
    deliveries.clear()
    calls = len(world.panorama.calls)
    connections = accepted_connections(renewed.cert_file)  # counted by path: the same file
    world.kube.services = list(AFTER)
    world.event("lb-write.eventgrid.json")
    world.drain()
    assert [(d.queue, d.dequeue_count, d.outcome) for d in deliveries] == [
        (RESYNCS, 1, DONE),
        (UPDATES, 1, POISONED),
    ], deliveries
    assert deliveries[1].retries == 0, deliveries
    assert len(world.panorama.calls) == calls  # nothing reached Panorama
    assert accepted_connections(renewed.cert_file) - connections == 1  # not retried
    state = world.applied()
    assert state is not None and "is not the pinned one" in (state.last_error or ""), state
    assert world.registered() == merged(FOREIGN, owned_tags(BEFORE))

    _pin(world, monkeypatch, sha256_fingerprint(renewed.cert_file))
    assert world.http("POST", "resync", b"{}").status_code == 202
    world.drain()
    assert world.registered() == merged(FOREIGN, owned_tags(AFTER))


@pytest.fixture
def kube_tls(world: LocalStack, tmp_path: Path) -> Iterator[Tls]:
    """aks-prod1's API server is a Kubernetes fake whose CA the test keeps; its kubeconfig
    (from listClusterUserCredential) carries that CA."""
    tls = Tls(tmp_path / "kube-tls", new_certificate_authority("cluster test CA"))
    kube = FakeKubeApi(token="kube-token", tls_dir=tls.directory)
    write_tls_material(tls.directory, tls.ca)
    with kube:
        kubeconfig = kube.kubeconfig()
        ca_data = base64.b64encode(tls.ca.pem).decode()
        kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"] = ca_data
        world.arm.add_cluster(SUB, "rg-prod", "aks-prod1", tags={"aksfw": "on"}, node_resource_group=NODE_GROUP,
                              kubeconfig=kubeconfig)  # fmt: skip
        world.kube = kube
        functions.application.cache_clear()
        yield tls
    assert kube.errors == []


@PROBLEMS
def test_panorama_certificate_refused_is_poisoned_at_once_and_removes_nothing(
    world, trusted_panorama, deliveries, problem
):
    converge(world)
    converged = world.applied()
    deliveries.clear()
    trusted_panorama.serve(world.panorama, problem)
    connections = trusted_panorama.connections

    world.kube.services = list(AFTER)
    world.event("lb-write.eventgrid.json")
    world.drain()
    assert [(d.queue, d.dequeue_count, d.outcome) for d in deliveries] == [
        (RESYNCS, 1, DONE),  # the event only queues the resync
        (UPDATES, 1, POISONED),
    ], deliveries
    assert deliveries[1].retries == 0 and deliveries[1].panorama_requests == 0, deliveries
    assert trusted_panorama.connections - connections == 1  # one handshake, not retried
    assert world.registered() == merged(FOREIGN, owned_tags(BEFORE))
    state = world.applied()
    assert state is not None and (state.tags, state.version) == (converged.tags, converged.version)
    assert state.dirty and "TLS" in (state.last_error or ""), state
    assert len(poison_messages(world.connection_string, UPDATES)) == 1

    deliveries.clear()
    trusted_panorama.serve(world.panorama)
    assert world.http("POST", "resync", b"{}").status_code == 202
    world.drain()
    assert world.registered() == merged(FOREIGN, owned_tags(AFTER))


@PROBLEMS
def test_kubernetes_certificate_refused_is_poisoned_at_once_and_removes_nothing(
    world, trusted_panorama, kube_tls, deliveries, problem
):
    converge(world)
    converged = world.applied()
    deliveries.clear()
    kube_tls.serve(world.kube, problem)

    world.kube.services = list(AFTER)
    world.event("lb-write.eventgrid.json")  # it queues a resync, whose list fails
    world.drain()
    assert [(d.queue, d.dequeue_count, d.outcome) for d in deliveries] == [
        (RESYNCS, 1, POISONED)
    ], deliveries
    assert deliveries[0].retries == 0 and deliveries[0].kube_requests == 0, deliveries
    assert world.registered() == merged(FOREIGN, owned_tags(BEFORE))
    assert world.applied() == converged
    assert len(poison_messages(world.connection_string, RESYNCS)) == 1
    assert poison_messages(world.connection_string, UPDATES) == []

    kube_tls.serve(world.kube)
    assert world.http("POST", "resync", b"{}").status_code == 202
    world.drain()
    assert world.registered() == merged(FOREIGN, owned_tags(AFTER))


def test_kubernetes_certificate_refused_takes_one_connection(
    world, trusted_panorama, kube_tls, deliveries
):
    converge(world)
    kube_tls.serve(world.kube, CertProblem.EXPIRED)
    connections = kube_tls.connections
    world.kube.services = list(AFTER)
    world.event("lb-write.eventgrid.json")
    assert kube_tls.connections == connections  # the event function only queues
    world.drain()
    assert kube_tls.connections - connections == 1  # one handshake: poisoned, not retried
