"""A fake Azure Key Vault (secrets, read-only) that the real ``SecretClient`` accepts.

Serves HTTPS on 127.0.0.1 with a throw-away CA (``tls.py``) and answers

* ``GET /secrets/{name}`` and ``GET /secrets/{name}/`` (latest version; the SDK sends
  the trailing-slash form when no version is given),
* ``GET /secrets/{name}/{version}``,

each with a mandatory ``api-version`` query parameter. Secret names match
case-insensitively, as Key Vault's do.

Authentication follows Key Vault's challenge protocol: a request without a valid
``Authorization: Bearer <token>`` gets 401 with
``WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/{tenant}",
resource="https://vault.azure.net"``; azure-keyvault-secrets parses that, asks its
credential for ``https://vault.azure.net/.default`` in that tenant, and retries. As
the resource's domain is not the fake's, clients need
``verify_challenge_resource=False``.

Secret values are kept out of every ``repr`` and never written to any log; the
request log ``requests`` holds methods, paths and query strings only. That log,
``inject`` and the server lifecycle come from ``AzureFake`` (``azure.py``).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .azure import AzureFake, error_body, error_response, json_response
from .server import HttpRequest, HttpResponse

DEFAULT_TENANT_ID = "33333333-3333-3333-3333-333333333333"
VAULT_RESOURCE = "https://vault.azure.net"

_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
_SECRET_PATH = re.compile(r"^/secrets/(?P<name>[^/]+)(?:/(?P<version>[^/]*))?/?$")
_ERROR_CODES = {
    400: "BadParameter",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    429: "Throttled",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


@dataclass
class _Version:
    version: str
    value: str = field(repr=False)
    enabled: bool
    content_type: str | None
    tags: dict[str, str]
    created: int


@dataclass
class _Secret:
    name: str  # as first set
    versions: list[_Version] = field(default_factory=list)


class FakeKeyVault(AzureFake):
    """In-process HTTPS Key Vault serving secrets (see the module docstring).

    ``url`` is the client's ``vault_url`` and ``ca_file`` its ``connection_verify``
    (both only while running). Tests may change ``token`` and ``tenant_id`` at any time.
    """

    error_codes = _ERROR_CODES
    tls_prefix = "fake-kv-tls-"

    def __init__(
        self,
        token: str = "kv-dev-token",
        tls_dir: Path | None = None,
        tenant_id: str = DEFAULT_TENANT_ID,
        resource: str = VAULT_RESOURCE,
    ) -> None:
        super().__init__(token, tenant_id, tls_dir)
        self.resource = resource
        self._secrets: dict[str, _Secret] = {}

    def __repr__(self) -> str:
        return f"FakeKeyVault(secrets={sorted(self.secret_names())!r})"

    @property
    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value of a 401 answer."""
        return (
            f'Bearer authorization="https://login.microsoftonline.com/{self.tenant_id}", '
            f'resource="{self.resource}"'
        )

    # ------------------------------------------------------------------ test helpers

    def set_secret(
        self,
        name: str,
        value: str,
        *,
        enabled: bool = True,
        content_type: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Add a new (latest) version of secret ``name``; returns the version id."""
        if not _NAME.match(name):
            raise ValueError(f"invalid Key Vault secret name: {name!r}")
        version = _Version(
            version=uuid.uuid4().hex,
            value=value,
            enabled=enabled,
            content_type=content_type,
            tags=dict(tags or {}),
            created=int(time.time()),
        )
        with self._lock:
            secret = self._secrets.setdefault(name.lower(), _Secret(name))
            secret.versions.append(version)
        return version.version

    def delete_secret(self, name: str) -> None:
        """Remove every version of a secret (KeyError if absent)."""
        with self._lock:
            del self._secrets[name.lower()]

    def secret_names(self) -> list[str]:
        with self._lock:
            return [secret.name for secret in self._secrets.values()]

    # ------------------------------------------------------------------ request handling

    def _unauthorized(self, request: HttpRequest) -> HttpResponse:
        message = (
            "AKV10000: Request is missing a Bearer or PoP token."
            if not request.headers.get("Authorization", "")
            else "AKV10032: Invalid issuer or token."
        )
        return json_response(
            401, error_body("Unauthorized", message), {"WWW-Authenticate": self.challenge}
        )

    def _dispatch(self, request: HttpRequest, path: str, query: dict[str, str]) -> HttpResponse:
        if not query.get("api-version"):
            return error_response(
                400, "BadParameter", "The 'api-version' query parameter is missing."
            )
        match = _SECRET_PATH.match(path)
        if match is None:
            return error_response(404, "NotFound", f"The requested path '{path}' is not served.")
        if request.method != "GET":
            return error_response(
                405, "MethodNotAllowed", f"Method '{request.method}' is not served by this fake."
            )
        return self._get(match.group("name"), match.group("version") or None)

    def _get(self, name: str, version: str | None) -> HttpResponse:
        if not _NAME.match(name):
            return error_response(
                400,
                "BadParameter",
                "The request URI contains an invalid name: "
                f"{name[:127]!r}. Follow this link for more information on how to name "
                "a secret: https://aka.ms/azsdk/keyvault/naming",
            )
        with self._lock:
            secret = self._secrets.get(name.lower())
            found: _Version | None = None
            if secret is not None and secret.versions:
                if version is None:
                    found = secret.versions[-1]
                else:
                    found = next(
                        (item for item in secret.versions if item.version == version.lower()),
                        None,
                    )
            stored_name = secret.name if secret is not None else name
        if found is None:
            suffix = f" with version '{version}'" if version else ""
            return error_response(
                404,
                "SecretNotFound",
                f"A secret with (name/id) {name}{suffix} was not found in this key vault. If "
                "you recently deleted this secret you may be able to recover it using the "
                "correct recovery command. For help resolving this issue, please see "
                "https://go.microsoft.com/fwlink/?linkid=2125182",
            )
        if not found.enabled:
            body = error_body("Forbidden", "Operation get is not allowed on a disabled secret.")
            body["error"]["innererror"] = {"code": "SecretDisabled"}
            return json_response(403, body)
        return json_response(200, self._bundle(stored_name, found))

    def _bundle(self, name: str, version: _Version) -> dict[str, Any]:
        body: dict[str, Any] = {
            "value": version.value,
            "id": f"{self.url}/secrets/{name}/{version.version}",
            "attributes": {
                "enabled": version.enabled,
                "created": version.created,
                "updated": version.created,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
            },
            "tags": dict(version.tags),
        }
        if version.content_type is not None:
            body["contentType"] = version.content_type
        return body
