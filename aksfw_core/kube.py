"""List a cluster's Services with the real `kubernetes` client.

The list is read in pages (`limit`/`continue`) and is all or nothing: a failure on any
page raises, so a partial list can never look like Services that went away.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from aksfw_core.errors import AuthError, InputError, NonRetryable, Retryable
from aksfw_core.retry import RetrySettings, retrying

log = logging.getLogger(__name__)


class KubernetesServices:
    """Reads every Service of one cluster, in all namespaces."""

    def __init__(
        self,
        api_client: Any,
        page_size: int = 500,
        timeout_s: tuple[float, float] = (5.0, 30.0),
        retry: RetrySettings | None = None,
    ) -> None:
        self._api = k8s.CoreV1Api(api_client)
        self._api_client = api_client
        self._page_size = page_size
        self._timeout = timeout_s
        self._retry = retry or RetrySettings()
        self._server = getattr(api_client.configuration, "host", "the API server")

    @classmethod
    def from_kubeconfig(
        cls,
        path: str,
        context: str | None = None,
        page_size: int = 500,
        retry: RetrySettings | None = None,
        timeout_s: tuple[float, float] = (5.0, 30.0),
    ) -> KubernetesServices:
        """Connect with a kubeconfig file (and optionally one of its contexts).

        Raises:
            InputError: the file is missing or not a usable kubeconfig.
        """
        try:
            api_client = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=path, context=context, persist_config=False
            )
        except (ConfigException, OSError, ValueError, TypeError) as error:
            raise InputError(f"kubeconfig {path}: {error}") from None
        return cls(api_client, page_size=page_size, timeout_s=timeout_s, retry=retry)

    def close(self) -> None:
        """Release the HTTP connections."""
        self._api_client.close()

    def list_items(self) -> list[dict[str, Any]]:
        """All Service objects (as the API returns them), every page read.

        Raises:
            AuthError: the API server refused the credential (401/403).
            Retryable: the server or network failed through every attempt.
            NonRetryable: any other refusal.
        """
        for attempt in retrying(self._retry, f"list Services on {self._server}"):
            with attempt:
                return self._list_once()
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _list_once(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self._page(token)
            page_items = page.get("items") or []
            if not isinstance(page_items, list):
                raise Retryable(f"{self._server}: list response without an items list")
            items.extend(page_items)
            token = (page.get("metadata") or {}).get("continue") or None
            if token is None:
                return items

    def _page(self, token: str | None) -> dict[str, Any]:
        try:
            # Raw JSON (no preload): the same parser then serves files and live clusters.
            response: Any = self._api.list_service_for_all_namespaces(
                limit=self._page_size,
                _continue=token,
                _preload_content=False,
                _request_timeout=self._timeout,
            )
            document = json.loads(response.data)
        except ApiException as error:
            raise _classify(error, self._server) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise Retryable(f"{self._server} unreachable ({type(error).__name__})") from None
        except ValueError:
            raise Retryable(f"{self._server}: list response is not JSON") from None
        if not isinstance(document, dict):
            raise Retryable(f"{self._server}: list response is not an object")
        return document


def _classify(error: ApiException, server: str) -> Exception:
    status = error.status or 0
    message = f"{server}: listing Services failed with HTTP {status} {error.reason or ''}".strip()
    if status in (401, 403):
        return AuthError(message)
    if status in {410, 429} or status >= 500:
        retry_after = (error.headers or {}).get("Retry-After")
        seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
        return Retryable(message, seconds)
    return NonRetryable(message)
