"""List a cluster's Services with the real `kubernetes` client.

The list is read in pages (`limit`/`continue`) and is all or nothing: a failure on any
page raises, so a partial list can never look like Services that went away. Every page
is bounded in time (a total deadline) and bytes, and the list in pages: a server that
keeps handing out pages, or the same `continue` token twice, is stopped with an error.
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

from aksfw_core.errors import (
    InputError,
    NonRetryable,
    Retryable,
    http_error,
    retry_after_seconds,
)
from aksfw_core.limits import Limits
from aksfw_core.retry import RetrySettings, retrying
from aksfw_core.transport import connection_failure, deadline, read_capped, watch_pools

log = logging.getLogger(__name__)


class KubernetesServices:
    """Reads every Service of one cluster, in all namespaces."""

    def __init__(
        self,
        api_client: Any,
        limits: Limits | None = None,
        retry: RetrySettings | None = None,
    ) -> None:
        self._api = k8s.CoreV1Api(api_client)
        self._api_client = api_client
        manager = api_client.rest_client.pool_manager
        # One connection per attempt: aksfw's retry policy decides about trying again, so a
        # refused certificate costs one handshake, not urllib3's four.
        manager.connection_pool_kw["retries"] = False
        watch_pools(manager)
        self._limits = limits or Limits()
        self._retry = retry or RetrySettings()
        self._server = getattr(api_client.configuration, "host", "the API server")
        self.resource_version: str | None = None
        """The resourceVersion of the last complete list: a watch starts from it."""

    @classmethod
    def from_kubeconfig(
        cls,
        path: str,
        context: str | None = None,
        limits: Limits | None = None,
        retry: RetrySettings | None = None,
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
        return cls(api_client, limits=limits, retry=retry)

    def close(self) -> None:
        """Release the HTTP connections."""
        self._api_client.close()

    def list_items(self) -> list[dict[str, Any]]:
        """All Service objects (as the API returns them), every page read.

        Raises:
            AuthError: the API server refused the credential (401/403).
            Retryable: the server or network failed through every attempt.
            NonRetryable: any other refusal, a TLS verification failure, a page over
                `limits.kube_max_response_bytes`, more pages than `limits.kube_max_pages`,
                or a `continue` token handed out twice.
        """
        for attempt in retrying(self._retry, f"list Services on {self._server}"):
            with attempt:
                return self._list_once()
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _list_once(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        seen: set[str] = set()
        version: str | None = None
        for _ in range(self._limits.kube_max_pages):
            page = self._page(token)
            if token is None:  # the list's version is the first page's
                version = _resource_version(page)
            page_items = page.get("items") or []
            if not isinstance(page_items, list):
                raise Retryable(f"{self._server}: list response without an items list")
            items.extend(page_items)
            token = (page.get("metadata") or {}).get("continue") or None
            if token is None:
                self.resource_version = version
                return items
            if not isinstance(token, str) or token in seen:
                raise NonRetryable(f"{self._server}: the Service list repeats a continue token")
            seen.add(token)
        raise NonRetryable(
            f"{self._server}: the Service list goes on past {self._limits.kube_max_pages} "
            "pages (limits.kubeMaxPages)"
        )

    def _page(self, token: str | None) -> dict[str, Any]:
        limits = self._limits
        what = f"{self._server}: list Services"
        try:
            with deadline(limits.kube_deadline_s, what):
                # Raw JSON (no preload): the same parser then serves files and live clusters.
                response: Any = self._api.list_service_for_all_namespaces(
                    limit=limits.kube_page_size,
                    _continue=token,
                    _preload_content=False,
                    _request_timeout=(limits.kube_connect_timeout_s, limits.kube_read_timeout_s),
                )
                try:
                    data = read_capped(
                        response.stream(64 * 1024), limits.kube_max_response_bytes, what
                    )
                finally:
                    response.release_conn()
            document = json.loads(data)
        except ApiException as error:
            # The client turns a TLS failure into a status-0 ApiException raised while
            # handling it: the failure itself is the exception's context.
            if isinstance(error.__context__, urllib3.exceptions.SSLError):
                raise NonRetryable(f"{self._server}: TLS verification failed") from None
            raise _classify(error, self._server) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise connection_failure(
                error, f"list Services on {self._server}", "the Kubernetes API server"
            ) from None
        except (ValueError, RecursionError):
            raise Retryable(f"{self._server}: list response is not JSON") from None
        if not isinstance(document, dict):
            raise Retryable(f"{self._server}: list response is not an object")
        return document


def _resource_version(page: dict[str, Any]) -> str | None:
    metadata = page.get("metadata")
    version = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
    return version if isinstance(version, str) and version else None


def _classify(error: ApiException, server: str) -> Exception:
    status = error.status or 0
    message = f"{server}: listing Services failed"
    if status == 410:  # the continue token expired: the list starts over
        return Retryable(f"{message} (HTTP 410 Gone)", status=410)
    retry_after = retry_after_seconds((error.headers or {}).get("Retry-After"))
    return http_error(status, message, retry_after)
