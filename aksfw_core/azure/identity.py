"""The Azure credential aksfw acts with: `DefaultAzureCredential` (the managed identity
in Azure, developer sign-ins locally), or a static token from `AKSFW_DEV_TOKEN` for local
fakes only. `AZURE_AUTHORITY_HOST` is honoured by azure-identity itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenCredential
from azure.identity import DefaultAzureCredential

from aksfw_core.logs import log_event

log = logging.getLogger(__name__)

AKS_SERVER_SCOPE = "6dae42f8-4368-4678-94ff-3960e28e3630/.default"
"""The Entra ID application of every AKS API server (what kubelogin asks a token for)."""


class StaticToken:
    """A fixed bearer token for every scope: local fakes only, never Azure."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo(self._token, int(time.time()) + 3600)

    def __repr__(self) -> str:
        return "StaticToken(***)"


def azure_credential(environ: Mapping[str, str]) -> TokenCredential:
    """The credential for Resource Manager, Key Vault and Entra-enabled clusters."""
    token = environ.get("AKSFW_DEV_TOKEN")
    if token:
        log_event(log, "identity.dev_token", logging.WARNING, note="AKSFW_DEV_TOKEN is set")
        return StaticToken(token)
    return DefaultAzureCredential()
