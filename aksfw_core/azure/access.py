"""Reach a monitored cluster's Kubernetes API with its configured credential.

- `azure`: the kubeconfig of `listClusterUserCredential`. For an Entra ID cluster its
  kubelogin `exec` user is replaced by a bearer token for the AKS server application,
  taken from aksfw's own credential and refreshed before it expires; a local-account
  cluster's kubeconfig is used as given.
- `token`: the vendor's documented path: API server URL, CA and a service-account token
  read from a Key Vault secret.

A kubeconfig that Resource Manager returns is data, not authority: before it reaches the
kubernetes client, `check_kubeconfig` accepts only `https://` servers and inline
credentials, never a key that makes the client read a file, run a command or go through a
proxy (`tokenFile: /proc/self/environ` would be read and sent as a bearer token). The
kubeconfig a user hands the CLI (`--kubeconfig`) is theirs and is not checked here.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import yaml
from azure.core.credentials import AccessToken, TokenCredential
from azure.keyvault.secrets import SecretClient

from aksfw_core.azure.arm import NotFound, call, container_service, origin
from aksfw_core.azure.identity import AKS_SERVER_SCOPE, StaticToken
from aksfw_core.azure.inventory import MonitoredCluster
from aksfw_core.config import Settings, TokenAccess
from aksfw_core.errors import AuthError, InputError, NonRetryable
from aksfw_core.kube import KubernetesServices, kube_api_client_from_dict
from aksfw_core.limits import Limits
from aksfw_core.rules.resource_ids import managed_cluster_id


class ClusterAccess:
    """Opens `KubernetesServices` for monitored clusters."""

    def __init__(
        self,
        settings: Settings,
        credential: TokenCredential,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._credential = credential
        self._clock = clock
        self._kubeconfigs: dict[str, tuple[float, dict[str, Any], bool]] = {}

    def services(self, cluster: MonitoredCluster) -> KubernetesServices:
        """A Service lister for `cluster`; the caller closes it.

        Raises:
            AuthError, Retryable, NonRetryable: the credential could not be obtained.
        """
        kubeconfig, entra = self._kubeconfig(cluster)
        api_client = kube_api_client_from_dict(kubeconfig, cluster.id)
        if entra:
            api_client.configuration.refresh_api_key_hook = EntraTokenHook(
                self._credential,
                self._clock,
                self._settings.limits.credential_refresh_margin_s,
            )
        return KubernetesServices(api_client, limits=self._settings.limits)

    def forget(self, cluster_id: str) -> None:
        """Drop a cached kubeconfig (after the API server refused it)."""
        self._kubeconfigs.pop(cluster_id.casefold(), None)

    def _kubeconfig(self, cluster: MonitoredCluster) -> tuple[dict[str, Any], bool]:
        key = cluster.id.casefold()
        cached = self._kubeconfigs.get(key)
        if cached is not None and cached[0] > self._clock():
            return cached[1], cached[2]
        if cluster.credential == "token":
            kubeconfig, entra = self._token_kubeconfig(cluster), False
        else:
            kubeconfig, entra = entra_to_token(self._user_kubeconfig(cluster))
        check_kubeconfig(kubeconfig, cluster.id)
        # Reused for a while, so an event storm costs no credential calls.
        expires = self._clock() + self._settings.limits.kubeconfig_ttl_s
        self._kubeconfigs[key] = (expires, kubeconfig, entra)
        return kubeconfig, entra

    def _user_kubeconfig(self, cluster: MonitoredCluster) -> dict[str, Any]:
        resource = managed_cluster_id(cluster.id)
        group, name = resource.resource_group or "", resource.path[1]
        endpoint = self._settings.arm_endpoint
        limits = self._settings.limits
        with container_service(self._credential, resource.subscription, endpoint, limits) as client:
            try:
                result = call(
                    f"listClusterUserCredential {cluster.id}",
                    lambda: client.managed_clusters.list_cluster_user_credentials(group, name),
                )
            except AuthError as error:
                if error.status != 403:
                    raise
                raise AuthError(
                    f"{error}: the app's identity needs Azure Kubernetes Service Cluster User"
                    " Role on this cluster (azd grants it to the clusters tagged at the last"
                    " `azd provision`: run it again for a newly tagged cluster)",
                    status=403,
                ) from None
        kubeconfigs = [k for k in (result.kubeconfigs or []) if k.value]
        if not kubeconfigs:
            raise NonRetryable(f"{cluster.id}: listClusterUserCredential returned no kubeconfig")
        return parse_kubeconfig(kubeconfigs[0].value or b"", cluster.id)

    def _token_kubeconfig(self, cluster: MonitoredCluster) -> dict[str, Any]:
        access = self._token_access(cluster)
        vault = self._settings.key_vault_url
        if vault is None:
            raise InputError("config.keyVault is required for token credentials")
        # The challenge-resource check stops a real Entra token going to an impostor
        # vault; a static development token (local fakes only) has nothing to protect.
        verify = not isinstance(self._credential, StaticToken)
        with SecretClient(
            vault,
            self._credential,
            verify_challenge_resource=verify,
            connection_timeout=self._settings.limits.azure_connect_timeout_s,
            read_timeout=self._settings.limits.azure_read_timeout_s,
            retry_total=3,
        ) as secrets:
            try:
                secret = call(
                    f"Key Vault secret {access.secret}",
                    lambda: secrets.get_secret(access.secret),
                    service="Key Vault",
                )
            except NotFound:
                raise NonRetryable(f"Key Vault secret {access.secret!r} not found") from None
        if not secret.value:
            raise NonRetryable(f"Key Vault secret {access.secret!r} is empty")
        return token_kubeconfig(access, secret.value.strip())

    def _token_access(self, cluster: MonitoredCluster) -> TokenAccess:
        if cluster.token is None:
            raise InputError(f"{cluster.id}: no token credential in the configuration")
        return cluster.token


class EntraTokenHook:
    """kubernetes `refresh_api_key_hook`: keeps a fresh Entra token for the AKS server app."""

    def __init__(
        self,
        credential: TokenCredential,
        clock: Callable[[], float] = time.time,
        refresh_margin_s: float = Limits.credential_refresh_margin_s,
    ) -> None:
        self._credential = credential
        self._clock = clock
        self._margin_s = refresh_margin_s
        self._token: AccessToken | None = None

    def __call__(self, configuration: Any) -> None:
        token = self._token
        if token is None or token.expires_on - self._margin_s <= self._clock():
            token = self._token = self._credential.get_token(AKS_SERVER_SCOPE)
        configuration.api_key["BearerToken"] = f"Bearer {token.token}"


def parse_kubeconfig(data: bytes, where: str) -> dict[str, Any]:
    """Read a kubeconfig (YAML).

    Raises:
        NonRetryable: it is not a kubeconfig.
    """
    try:
        document = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError):
        raise NonRetryable(f"{where}: the kubeconfig is not YAML") from None
    if not isinstance(document, dict) or not document.get("contexts"):
        raise NonRetryable(f"{where}: the kubeconfig has no contexts")
    return document


def entra_to_token(kubeconfig: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Replace `exec` users (kubelogin) by a token placeholder the refresh hook fills.

    Returns the kubeconfig and whether it needs Entra tokens. Pure.
    """
    entra = False
    users = []
    entries = kubeconfig.get("users") or []
    if not isinstance(entries, list):
        return kubeconfig, False  # check_kubeconfig refuses it
    for entry in entries:
        user = entry.get("user") if isinstance(entry, dict) else None
        if isinstance(user, dict) and ("exec" in user or "auth-provider" in user):
            entra = True
            users.append({**entry, "user": {"token": "pending-entra-token"}})
        else:
            users.append(entry)
    return {**kubeconfig, "users": users}, entra


_CLUSTER_KEYS_REFUSED = ("certificate-authority", "proxy-url")
"""Cluster keys of a kubeconfig the kubernetes client would act on beyond the document:
a CA file it reads, a proxy it sends the connection (and token) through."""

_USER_KEYS_REFUSED = ("tokenFile", "client-certificate", "client-key", "exec", "auth-provider")
"""User keys the kubernetes client (`config.kube_config`) reads a file for (`tokenFile`,
`client-certificate`, `client-key`) or runs a command or token exchange for (`exec`;
`auth-provider`: gcp's `cmd-path`, oidc's `idp-certificate-authority` file and refresh).
An Entra `exec`/`auth-provider` user has been replaced by `entra_to_token` before the check.
"""


def check_kubeconfig(kubeconfig: dict[str, Any], where: str) -> None:
    """Refuse a kubeconfig from Azure that would make the kubernetes client read a local
    file, run a command, use a proxy, skip TLS verification or talk plain HTTP: every
    cluster's `server` must be `https://`, and credentials inline (`token`,
    `client-certificate-data`, `client-key-data`, `certificate-authority-data`). Messages
    name the key, never its value. Pure.

    Raises:
        NonRetryable: the kubeconfig is refused (asking again returns the same one).
    """
    for index, cluster in enumerate(_sections(kubeconfig, "clusters", "cluster", where)):
        name = f"clusters[{index}]"
        for key in _CLUSTER_KEYS_REFUSED:
            if key in cluster:
                raise NonRetryable(_refused(where, name, key))
        if cluster.get("insecure-skip-tls-verify") not in (None, False):
            raise NonRetryable(_refused(where, name, "insecure-skip-tls-verify"))
        server = cluster.get("server")
        found = origin(server) if isinstance(server, str) else None
        if found is None or found[0] != "https":
            raise NonRetryable(
                f"{where}: the kubeconfig from Azure has a {name} server that is not an"
                " https:// URL: refused"
            )
    for index, user in enumerate(_sections(kubeconfig, "users", "user", where)):
        for key in _USER_KEYS_REFUSED:
            if key in user:
                raise NonRetryable(_refused(where, f"users[{index}]", key))


def _sections(kubeconfig: dict[str, Any], plural: str, singular: str, where: str) -> list[Any]:
    entries = kubeconfig.get(plural)
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise NonRetryable(f"{where}: the kubeconfig's {plural} is not a list")
    sections = []
    for index, entry in enumerate(entries):
        section = entry.get(singular) if isinstance(entry, dict) else None
        if not isinstance(section, dict):
            raise NonRetryable(f"{where}: the kubeconfig's {plural}[{index}] has no {singular}")
        sections.append(section)
    return sections


def _refused(where: str, section: str, key: str) -> str:
    return (
        f"{where}: the kubeconfig from Azure sets {key!r} in {section}: refused (only"
        " inline credentials and https:// servers are accepted from Azure)"
    )


def token_kubeconfig(access: TokenAccess, token: str) -> dict[str, Any]:
    """A one-context kubeconfig for a service-account token. Pure."""
    cluster: dict[str, Any] = {"server": access.server}
    if access.ca:
        cluster["certificate-authority-data"] = base64.b64encode(access.ca.encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "aksfw", "cluster": cluster}],
        "users": [{"name": "aksfw", "user": {"token": token}}],
        "contexts": [{"name": "aksfw", "context": {"cluster": "aksfw", "user": "aksfw"}}],
        "current-context": "aksfw",
    }
