"""The document's `panorama` section, and the checks the command line shares with it
(`aksfw_core.cli.options`): one check per field, told `where` (document path or option),
each raising InputError that names `where`.

Panorama's certificate is trusted one of three ways: the system's CAs (the default), the
CAs in `caCertificates` (PEM text; in Azure the `PANORAMA_CA_CERTIFICATES` app setting, a
Key Vault reference), or a pin of the device's own certificate, `certificateSha256`. A
pin and a CA list, or either and `verifyTls: false`, contradict each other and are
refused, so what is trusted is never a guess.
"""

from __future__ import annotations

import os
import re
import ssl
from dataclasses import replace
from typing import Any

from aksfw_core.config.model import PanoramaSettings, PanoramaTargets
from aksfw_core.config.reader import Fields, boolean, integer, naming, string
from aksfw_core.endpoints import panorama_url
from aksfw_core.errors import InputError
from aksfw_core.rules.messages import is_firewall_serial
from aksfw_core.rules.tags import MAX_TAG_TIMEOUT_S

CA_CERTIFICATES_SETTING = "PANORAMA_CA_CERTIFICATES"
"""The app setting that holds `panorama.caCertificates` in Azure (a Key Vault reference)."""
_KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("
_HEX_64 = re.compile(r"[0-9a-f]{64}")
_MAX_PEM_CHARS = 1_000_000
_PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


def panorama_section(value: object, path: str, environ_ca: str | None = None) -> PanoramaSettings:
    """`panorama`; `environ_ca` is the `PANORAMA_CA_CERTIFICATES` setting, if set."""
    fields = Fields(value, path)
    url = fields.required("host", panorama_host)
    given: dict[str, Any] = {
        "targets": fields.optional("targets", _targets),
        "vsys": fields.optional("vsys", vsys_name),
        "ca_certificates": fields.optional("caCertificates", ca_certificates),
        "certificate_sha256": fields.optional("certificateSha256", certificate_sha256),
        "verify_tls": fields.optional("verifyTls", boolean),
        "tag_timeout_s": fields.optional("tagTimeoutSeconds", tag_timeout_s),
        "batch_size": fields.optional("batchSize", batch_size),
        "capacity_warning_ips": fields.optional("capacityWarningIps", capacity_warning_ips),
    }
    if "caBundle" in fields.value:
        raise InputError(
            f"{fields.at('caBundle')}: replaced by caCertificates, the PEM text itself "
            f"(in Azure the app setting {CA_CERTIFICATES_SETTING}, a Key Vault reference)"
        )
    fields.done()  # what is not given keeps PanoramaSettings' default
    if environ_ca is not None:
        if given["ca_certificates"] is not None:
            raise InputError(
                f"{fields.at('caCertificates')}: set it or {CA_CERTIFICATES_SETTING}, not both"
            )
        given["ca_certificates"] = ca_certificates(environ_ca, CA_CERTIFICATES_SETTING)
    settings = replace(PanoramaSettings(url), **{k: v for k, v in given.items() if v is not None})
    check_trust(settings, path + ".")
    return settings


def check_trust(settings: PanoramaSettings, prefix: str = "") -> None:
    """Refuse ways of trusting Panorama's certificate that contradict each other.

    `prefix` is prepended to the field names (`config.panorama.`); without it the
    message names the options.

    Raises:
        InputError: a pin and CAs, or either with verification off.
    """
    names = (
        (f"{prefix}certificateSha256", f"{prefix}caCertificates", f"{prefix}verifyTls")
        if prefix
        else ("--certificate-sha256", "--ca-bundle", "--no-verify-tls")
    )
    pin, cas, off = names
    if settings.certificate_sha256 and settings.ca_certificates:
        raise InputError(f"{pin}: a pin accepts one certificate whoever issued it; drop {cas}")
    if not settings.verify_tls and (settings.certificate_sha256 or settings.ca_certificates):
        chosen = pin if settings.certificate_sha256 else cas
        raise InputError(f"{off}: certificate checks off contradict {chosen}; drop one")


def panorama_host(value: object, where: str) -> str:
    """`panorama.host`, `--panorama` as a base URL (`endpoints.panorama_url`)."""
    return naming(where, panorama_url, string(value, where))


def firewall_serial(value: object, where: str) -> str:
    """`panorama.targets.serials[]`, `--target`: a managed firewall's serial number."""
    text = string(value, where)
    if not is_firewall_serial(text):
        raise InputError(f"{where}: {text!r} is not a firewall serial number")
    return text


def vsys_name(value: object, where: str) -> str:
    """`panorama.vsys`, `--vsys`: a virtual system on the target, e.g. `vsys1`."""
    return string(value, where)


batch_size = integer(1, 5000)
"""`panorama.batchSize`, `--batch-size`: IP entries per uid-message."""
tag_timeout_s = integer(0, MAX_TAG_TIMEOUT_S)
"""`panorama.tagTimeoutSeconds`, `--tag-timeout`: seconds a registered tag lives (PAN-OS
takes up to 30 days; 0 = never expires)."""
capacity_warning_ips = integer(1, 100_000_000)
"""`panorama.capacityWarningIps`: registered IPs on one target at which aksfw warns (a log
line and the `aksfw.panorama.capacity_warning` metric)."""


def ca_certificates(value: object, where: str) -> str:
    """`panorama.caCertificates`, `PANORAMA_CA_CERTIFICATES`: PEM text of one or more CA
    certificates (or of the device's own self-signed one) that TLS can load."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: expected PEM text (-----BEGIN CERTIFICATE-----...)")
    text = value.strip()
    if text.startswith(_KEY_VAULT_REFERENCE):
        raise InputError(
            f"{where}: an unresolved Key Vault reference: store the secret and give the "
            "app's identity Key Vault Secrets User on the vault"
        )
    if len(text) > _MAX_PEM_CHARS or _PEM_CERTIFICATE not in text:
        raise InputError(f"{where}: expected PEM text (-----BEGIN CERTIFICATE-----...)")
    try:
        ssl.create_default_context(cadata=text + "\n")
    except (ssl.SSLError, ValueError):
        raise InputError(f"{where}: not a certificate TLS can load (PEM damaged?)") from None
    return text + "\n"


def ca_bundle(value: object, where: str) -> str:
    """`--ca-bundle`: a PEM file of CA certificates, read now (so a mistake shows before
    the first request) and checked as `caCertificates`; the PEM text."""
    name = pem_file(value, where)
    try:
        with open(name, encoding="ascii", errors="replace") as file:
            text = file.read(_MAX_PEM_CHARS + 1)
    except OSError as error:
        raise InputError(f"{where}: {name} cannot be read ({error.strerror})") from None
    return ca_certificates(text, f"{where} {name}")


def pem_file(value: object, where: str) -> str:
    """A PEM file that exists and can be read (for clients that take a path); its path."""
    name = string(value, where)
    if not os.path.isfile(name):
        raise InputError(f"{where}: {name} is not a file")
    try:
        with open(name, "rb") as file:
            file.read(1)
    except OSError as error:
        raise InputError(f"{where}: {name} cannot be read ({error.strerror})") from None
    return name


def certificate_sha256(value: object, where: str) -> str:
    """`panorama.certificateSha256`, `--certificate-sha256`: the SHA-256 fingerprint of
    the device's certificate as `openssl x509 -fingerprint -sha256` prints it (colons and
    letter case do not matter); 64 lower-case hex digits."""
    text = string(value, where)
    digits = text.lower().removeprefix("sha256 fingerprint=").replace(":", "")
    if not _HEX_64.fullmatch(digits):
        raise InputError(
            f"{where}: expected the certificate's SHA-256 fingerprint, 64 hex digits "
            "(openssl x509 -noout -fingerprint -sha256)"
        )
    return digits


def _targets(value: object, path: str) -> PanoramaTargets:
    if value == "panorama":
        return PanoramaTargets()
    fields = Fields(value, path)
    targets = PanoramaTargets(
        panorama=fields.optional("panorama", boolean) is True,
        device_groups=tuple(fields.list("deviceGroups", string)),
        serials=tuple(fields.list("serials", firewall_serial)),
    )
    fields.done()
    if not (targets.panorama or targets.device_groups or targets.serials):
        raise InputError(f"{path}: names no target (panorama, deviceGroups or serials)")
    return targets
