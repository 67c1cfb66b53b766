"""What a test of the watcher's publisher gives it besides the fake Event Grid topic: Azure
timeouts that end quickly and a credential handing out the topic's token."""

from __future__ import annotations

import time
from typing import Any

from azure.core.credentials import AccessToken

from aksfw_core.limits import Limits

LIMITS = Limits(azure_connect_timeout_s=2, azure_read_timeout_s=5)


class Credential:
    """A TokenCredential handing out one token and recording the scopes asked for."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)
