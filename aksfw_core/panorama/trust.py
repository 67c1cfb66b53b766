"""How the Panorama client trusts the certificate it is shown: the system's CAs, the CAs
of `caCertificates`, or a pin of the device's own certificate.

`trust_of` decides (a pure function of the settings); `TrustingAdapter` makes requests
and urllib3 do exactly that, and nothing more: requests on its own would add its CA
bundle (or `REQUESTS_CA_BUNDLE`'s) to a context given to it, so that a certificate any
public CA issued would pass where the operator named one CA.

A pin is checked by urllib3 on the leaf certificate right after the handshake, before a
byte of the request (the API key) is sent; the name in it is not checked, as PAN-OS
tools do with the device's self-signed certificate. A pin that does not match raises
urllib3's `SSLError` without an `ssl.SSLError` under it, which
`transport.connection_failure` reports as such.
"""

from __future__ import annotations

import enum
import ssl
from typing import Any, NamedTuple

from requests import PreparedRequest
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool

from aksfw_core.config import PanoramaSettings

TRUST_HINT = (
    "trust its CA with panorama.caCertificates (--ca-bundle FILE) or pin its certificate "
    "with panorama.certificateSha256 (--certificate-sha256 HEX); README: Panorama's "
    "certificate"
)
"""What to do about a certificate that is not trusted, for every TLS failure message."""


class TrustKind(enum.Enum):
    """Which certificates a connection to Panorama accepts."""

    SYSTEM = "system"
    """Any the system's CAs (certifi's) vouch for, for the host name."""
    CAS = "cas"
    """Any the configured CAs vouch for, for the host name."""
    PIN = "pin"
    """The one certificate whose SHA-256 fingerprint is configured."""
    NONE = "none"
    """Any (`verifyTls: false`)."""


class Trust(NamedTuple):
    """What a connection to Panorama trusts."""

    kind: TrustKind
    ca_certificates: str | None = None
    """PEM text, with `CAS`."""
    sha256: str | None = None
    """64 hex digits, with `PIN`."""


def trust_of(settings: PanoramaSettings) -> Trust:
    """The trust the settings ask for (`config.check_trust` refused contradictions)."""
    if not settings.verify_tls:
        return Trust(TrustKind.NONE)
    if settings.certificate_sha256:
        return Trust(TrustKind.PIN, sha256=settings.certificate_sha256)
    if settings.ca_certificates:
        return Trust(TrustKind.CAS, ca_certificates=settings.ca_certificates)
    return Trust(TrustKind.SYSTEM)


def _context(trust: Trust) -> ssl.SSLContext | None:
    """The TLS context of a trust; None = urllib3's own (with requests' CA bundle)."""
    if trust.kind is TrustKind.CAS:
        context = ssl.create_default_context(cadata=trust.ca_certificates)
    elif trust.kind is TrustKind.PIN:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        return None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # The same checks on every Python the app runs on: 3.13 turns on strict X.509 checks
    # by default, which refuse certificates (no key identifiers, say) older ones accept;
    # a CA given as an intermediate is a trust anchor of its own.
    context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


class TrustingAdapter(HTTPAdapter):
    """A requests adapter whose HTTPS connections trust what `trust` says, and only that."""

    def __init__(self, trust: Trust) -> None:
        self.trust = trust
        self._pool: dict[str, Any] = {}
        context = _context(trust)
        if context is not None:
            self._pool["ssl_context"] = context
            self._pool["ca_certs"] = None
            self._pool["ca_cert_dir"] = None
        if trust.kind is TrustKind.PIN:
            self._pool["assert_fingerprint"] = trust.sha256
        super().__init__()

    @property
    def verify(self) -> bool:
        """What to give requests as `verify` (False only when checks are off)."""
        return self.trust.kind is not TrustKind.NONE

    def build_connection_pool_key_attributes(
        self, request: PreparedRequest, verify: bool | str, cert: Any = None
    ) -> Any:  # requests' stubs type the pool's keywords without assert_fingerprint
        host, given = super().build_connection_pool_key_attributes(request, verify, cert)
        pool: dict[str, Any] = dict(given)
        if host.get("scheme") == "https" and self._pool:
            pool.update(self._pool)
            pool["cert_reqs"] = "CERT_NONE" if self.trust.kind is TrustKind.PIN else "CERT_REQUIRED"
        return host, pool

    def cert_verify(self, conn: HTTPConnectionPool, url: str, verify: Any, cert: Any) -> None:
        if not self._pool:
            super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]
            return
        # requests would point the pool at its CA bundle here, which urllib3 then adds to
        # the context: the pool keeps what build_connection_pool_key_attributes gave it.
        conn.ca_certs = None  # type: ignore[attr-defined]
        conn.ca_cert_dir = None  # type: ignore[attr-defined]
