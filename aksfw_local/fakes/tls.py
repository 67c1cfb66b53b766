"""Throw-away TLS material for the test fakes.

``make_tls_material`` writes a throw-away certificate authority and a server
certificate (valid for ``localhost`` and ``127.0.0.1``) as PEM files, so a fake can
serve HTTPS that real clients verify against ``ca_file``; ``server_context`` turns
them into the server's ``SSLContext``. The HTTP side is in ``server.py``.

For TLS failures, ``write_tls_material`` writes the material of a given
``CertificateAuthority`` (kept by the test, so it can issue again) with a
``CertProblem``: a server certificate from a CA the client does not trust, for another
host name, or expired. A fake built with ``tls_dir`` reads its files on each
``start()``, so a test can stop it, write other material into that directory and start
it again on the same port. ``accepted_connections`` counts the connections (TLS
handshakes begun) a fake served with a certificate file has accepted.
"""

from __future__ import annotations

import datetime
import enum
import ipaddress
import os
import ssl
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOOPBACK = "127.0.0.1"
OTHER_HOST = "panorama.example.invalid"
"""The only name a ``CertProblem.WRONG_HOST`` certificate is valid for."""


@dataclass(frozen=True)
class TlsMaterial:
    """PEM files of a test CA and a server certificate signed by it."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    ca_pem: bytes


class CertProblem(enum.Enum):
    """Why a client that trusts ``ca_file`` must refuse the server certificate."""

    UNTRUSTED_CA = "untrusted-ca"  # signed by another CA than ca_file
    WRONG_HOST = "wrong-host"  # valid for OTHER_HOST only, not localhost/127.0.0.1
    EXPIRED = "expired"  # validity ended a day ago


@dataclass(frozen=True)
class CertificateAuthority:
    """A test CA whose key is kept, so it can issue server certificates again."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by the owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _validity(now: datetime.datetime) -> tuple[datetime.datetime, datetime.datetime]:
    # One day, backdated by five minutes to tolerate clock skew.
    return now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1)


def new_certificate_authority(common_name: str = "aksfw test CA") -> CertificateAuthority:
    """A self-signed EC P-256 CA valid for one day."""
    not_before, not_after = _validity(datetime.datetime.now(datetime.UTC))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return CertificateAuthority(ca_cert, ca_key)


def _server_certificate(
    ca: CertificateAuthority,
    key: ec.EllipticCurvePrivateKey,
    names: list[x509.GeneralName],
    not_before: datetime.datetime,
    not_after: datetime.datetime,
) -> x509.Certificate:
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    common_name = next(
        (str(name.value) for name in names if isinstance(name, x509.DNSName)), LOOPBACK
    )
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )


def write_tls_material(
    directory: Path, ca: CertificateAuthority, problem: CertProblem | None = None
) -> TlsMaterial:
    """Write ``ca``'s certificate as ``ca_file`` (what clients should trust) and a server
    certificate with its key, in ``directory`` (files replaced if present).

    Without ``problem`` the server certificate is signed by ``ca`` and valid for
    ``localhost`` and ``127.0.0.1`` for one day; with one it is refused as it says.
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    not_before, not_after = _validity(now)
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.IPv4Address(LOOPBACK)),
    ]
    issuer = ca
    if problem is CertProblem.UNTRUSTED_CA:
        issuer = new_certificate_authority("aksfw untrusted test CA")
    elif problem is CertProblem.WRONG_HOST:
        names = [x509.DNSName(OTHER_HOST)]
    elif problem is CertProblem.EXPIRED:
        not_before, not_after = now - datetime.timedelta(days=3), now - datetime.timedelta(days=1)

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _server_certificate(issuer, server_key, names, not_before, not_after)
    material = TlsMaterial(
        ca_file=directory / "ca.pem",
        cert_file=directory / "server.pem",
        key_file=directory / "server-key.pem",
        ca_pem=ca.pem,
    )
    material.ca_file.write_bytes(ca.pem)
    material.cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(
        material.key_file,
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return material


def write_self_signed(directory: Path, common_name: str = "PA-Panorama") -> TlsMaterial:
    """Write a self-signed server certificate (no CA behind it; ``ca_file`` is the
    certificate itself) valid only for ``common_name``, not for ``localhost`` or
    ``127.0.0.1``: what a Panorama shows out of the box. Its fingerprint:
    ``sha256_fingerprint(material.cert_file)``."""
    directory.mkdir(parents=True, exist_ok=True)
    not_before, not_after = _validity(datetime.datetime.now(datetime.UTC))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    material = TlsMaterial(
        ca_file=directory / "ca.pem",
        cert_file=directory / "server.pem",
        key_file=directory / "server-key.pem",
        ca_pem=pem,
    )
    material.ca_file.write_bytes(pem)
    material.cert_file.write_bytes(pem)
    _write_private(
        material.key_file,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return material


def sha256_fingerprint(cert_file: Path) -> str:
    """The certificate's SHA-256 fingerprint as ``openssl x509 -noout -fingerprint
    -sha256`` prints it: ``AB:CD:...``."""
    certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def make_tls_material(directory: Path) -> TlsMaterial:
    """Create a self-signed CA and a ``localhost``/``127.0.0.1`` server cert in ``directory``.

    Keys are EC P-256; both certificates are valid for one day (backdated by five
    minutes to tolerate clock skew).
    """
    return write_tls_material(directory, new_certificate_authority())


_accepted: Counter[Path] = Counter()
_accepted_lock = threading.Lock()


def accepted_connections(cert_file: Path) -> int:
    """Connections accepted so far by servers presenting ``cert_file`` (each one a TLS
    handshake begun, whether it then succeeded or not)."""
    with _accepted_lock:
        return _accepted[cert_file]


class _CountingContext(ssl.SSLContext):
    """A server ``SSLContext`` that counts the sockets it wraps (one per connection)."""

    cert_file: Path

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:  # type: ignore[override]
        with _accepted_lock:
            _accepted[self.cert_file] += 1
        return super().wrap_socket(*args, **kwargs)


def server_context(material: TlsMaterial) -> ssl.SSLContext:
    """An ``SSLContext`` for a server presenting ``material``'s certificate (TLS 1.2+)."""
    context = _CountingContext(ssl.PROTOCOL_TLS_SERVER)
    context.cert_file = material.cert_file
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=material.cert_file, keyfile=material.key_file)
    return context
