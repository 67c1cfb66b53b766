"""Panorama's own certificate: the simulator over HTTPS with a self-signed certificate
whose name is not the address used (what a Panorama shows out of the box), or with one a
private CA issued for the right name.

A pin accepts that one certificate whatever its name; CAs accept what they issued for the
name; nothing else is trusted, not even what REQUESTS_CA_BUNDLE would add; a certificate
that is not trusted, or not the pinned one, fails on the first connection, in one line,
before the API key or a registration is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aksfw_core.config import PanoramaSettings, parse_settings
from aksfw_core.errors import InputError, NonRetryable
from aksfw_core.panorama.client import PanoramaClient, api_key
from aksfw_core.rules.plan import TagPlan
from aksfw_local.fakes.panorama import PanoramaSimulator
from aksfw_local.fakes.tls import (
    TlsMaterial,
    accepted_connections,
    new_certificate_authority,
    sha256_fingerprint,
    write_self_signed,
    write_tls_material,
)
from tests.support.panorama import API_KEY, settings_for

REGISTER = TagPlan(register={"10.0.0.1": frozenset({"aks.prod1.web"})})


class Served:
    """The simulator over HTTPS, presenting the certificate in `material`."""

    def __init__(self, simulator: PanoramaSimulator, material: TlsMaterial) -> None:
        self.simulator = simulator
        self.material = material

    @property
    def connections(self) -> int:
        return accepted_connections(self.material.cert_file)

    def settings(self, **overrides: object) -> PanoramaSettings:
        return settings_for(self.simulator, **overrides)


@pytest.fixture
def self_signed(tmp_path: Path) -> Iterator[Served]:
    """A Panorama with its self-signed certificate for `PA-Panorama`, reached as 127.0.0.1."""
    directory = tmp_path / "self-signed"
    simulator = PanoramaSimulator(api_key=API_KEY, tls_dir=directory)
    material = write_self_signed(directory, "PA-Panorama")
    with simulator:
        yield Served(simulator, material)
    assert simulator.errors == []


@pytest.fixture
def ca_issued(tmp_path: Path) -> Iterator[Served]:
    """A Panorama with a certificate a private CA issued for 127.0.0.1."""
    directory = tmp_path / "ca-issued"
    simulator = PanoramaSimulator(api_key=API_KEY, tls_dir=directory)
    material = write_tls_material(directory, new_certificate_authority("corp CA"))
    with simulator:
        yield Served(simulator, material)
    assert simulator.errors == []


def _registered(served: Served) -> dict[str, object]:
    return dict(served.simulator.registered())


def test_a_pin_accepts_the_self_signed_certificate_whatever_its_name(self_signed):
    pin = sha256_fingerprint(self_signed.material.cert_file)  # AB:CD:... as openssl prints
    with PanoramaClient(
        self_signed.settings(certificate_sha256=_digits(pin)), api_key(API_KEY)
    ) as client:
        client.apply(REGISTER)
        assert set(client.registered()) == {"10.0.0.1"}
    assert set(_registered(self_signed)) == {"10.0.0.1"}


def test_a_wrong_pin_fails_at_once_and_sends_nothing(self_signed):
    other = write_self_signed(self_signed.material.cert_file.parent / "other", "PA-Panorama")
    wrong = _digits(sha256_fingerprint(other.cert_file))
    settings = self_signed.settings(certificate_sha256=wrong)
    with (
        PanoramaClient(settings, api_key(API_KEY)) as client,
        pytest.raises(NonRetryable) as raised,
    ):
        client.apply(REGISTER)
    message = str(raised.value)
    assert "is not the pinned one" in message
    assert "\n" not in message and API_KEY not in message
    assert client.requests_sent == 1  # not retried: a certificate does not change by waiting
    assert self_signed.connections == 1
    assert self_signed.simulator.calls == []  # not a byte of the request reached it
    assert _registered(self_signed) == {}


def test_a_self_signed_certificate_not_trusted_fails_in_one_line_naming_both_ways(self_signed):
    with (
        PanoramaClient(self_signed.settings(), api_key(API_KEY)) as client,
        pytest.raises(NonRetryable) as raised,
    ):
        client.apply(REGISTER)
    message = str(raised.value)
    assert "TLS certificate of 127.0.0.1:" in message and "is not trusted" in message
    assert "panorama.caCertificates (--ca-bundle FILE)" in message
    assert "panorama.certificateSha256 (--certificate-sha256 HEX)" in message
    assert "\n" not in message
    assert client.requests_sent == 1 and self_signed.connections == 1
    assert self_signed.simulator.calls == []


def test_trusting_the_self_signed_certificate_as_a_ca_still_checks_the_name(self_signed):
    """Its name is PA-Panorama, the address 127.0.0.1: a CA list cannot vouch for that."""
    settings = self_signed.settings(ca_certificates=self_signed.material.ca_pem.decode())
    with (
        PanoramaClient(settings, api_key(API_KEY)) as client,
        pytest.raises(NonRetryable, match="is not trusted"),
    ):
        client.registered()
    assert self_signed.simulator.calls == []


def test_a_private_ca_is_trusted_where_the_name_matches(ca_issued):
    settings = ca_issued.settings(ca_certificates=ca_issued.material.ca_pem.decode())
    with PanoramaClient(settings, api_key(API_KEY)) as client:
        client.apply(REGISTER)
    assert set(_registered(ca_issued)) == {"10.0.0.1"}


def test_the_configured_cas_are_the_only_ones_trusted(ca_issued, tmp_path, monkeypatch):
    """REQUESTS_CA_BUNDLE (requests' own override) adds nothing to what is configured."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_issued.material.ca_file))
    another = new_certificate_authority("another CA").pem.decode()
    with (
        PanoramaClient(ca_issued.settings(ca_certificates=another), api_key(API_KEY)) as client,
        pytest.raises(NonRetryable, match="is not trusted"),
    ):
        client.registered()
    pin = _digits(sha256_fingerprint(write_self_signed(tmp_path / "x").cert_file))
    with (
        PanoramaClient(ca_issued.settings(certificate_sha256=pin), api_key(API_KEY)) as client,
        pytest.raises(NonRetryable, match="is not the pinned one"),
    ):
        client.registered()
    assert ca_issued.simulator.calls == []


@pytest.mark.parametrize(
    ("panorama", "error"),
    [
        (
            {"certificateSha256": "ab" * 32, "caCertificates": "{pem}"},
            "config.panorama.certificateSha256: a pin accepts one certificate",
        ),
        (
            {"certificateSha256": "ab" * 32, "verifyTls": False},
            "config.panorama.verifyTls: certificate checks off contradict "
            "config.panorama.certificateSha256",
        ),
        ({"certificateSha256": "ab" * 31}, "config.panorama.certificateSha256: expected"),
        ({"certificateSha256": "zz" * 32}, "config.panorama.certificateSha256: expected"),
        ({"caCertificates": "not a pem"}, "config.panorama.caCertificates: expected PEM"),
        (
            {"caCertificates": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"},
            "config.panorama.caCertificates: not a certificate TLS can load",
        ),
        ({"caBundle": "/etc/ssl/ca.pem"}, "config.panorama.caBundle: replaced by caCertificates"),
    ],
)
def test_the_document_refuses_trust_that_is_wrong_or_contradicts_itself(ca_issued, panorama, error):
    pem = ca_issued.material.ca_pem.decode()
    section = {k: (pem if v == "{pem}" else v) for k, v in panorama.items()}
    with pytest.raises(InputError) as raised:
        parse_settings({"panorama": {"host": "panorama.example.com", **section}})
    assert str(raised.value).startswith(error)


def test_the_pin_is_read_as_openssl_prints_it():
    text = "sha256 Fingerprint=" + ":".join(["AB"] * 32)
    settings = parse_settings({"panorama": {"host": "p.example.com", "certificateSha256": text}})
    assert settings.panorama is not None
    assert settings.panorama.certificate_sha256 == "ab" * 32


def test_the_ca_setting_in_the_environment_is_the_document_s_ca_certificates(ca_issued):
    pem = ca_issued.material.ca_pem.decode()
    document = {"panorama": {"host": "p.example.com"}}
    settings = parse_settings(document, environ_ca=pem)
    assert settings.panorama is not None and settings.panorama.ca_certificates == pem.strip() + "\n"
    with pytest.raises(InputError, match="set it or PANORAMA_CA_CERTIFICATES, not both"):
        parse_settings({"panorama": {"host": "p", "caCertificates": pem}}, environ_ca=pem)
    reference = "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/ca)"
    with pytest.raises(InputError, match="PANORAMA_CA_CERTIFICATES: an unresolved Key Vault"):
        parse_settings(document, environ_ca=reference)


def _digits(fingerprint: str) -> str:
    return fingerprint.replace(":", "").lower()
