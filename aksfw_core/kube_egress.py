"""The Kubernetes wing's list of Static Egress Gateways (DESIGN section 11): every
`StaticGatewayConfiguration` (`egressgateway.kubernetes.azure.com/v1alpha1`, plural
`staticgatewayconfigurations`, namespaced) of a cluster, in all namespaces, read by the
rules of every list (`kube.KubernetesList`: pages, a deadline, byte and page caps) on the
cluster's one API client, each object reduced to its namespace, name and
`status.egressIpPrefix` as its page arrives (`rules.egress.gateway_fields`).

A cluster where the Static Egress Gateway is not enabled has no such resource: the API
server answers 404, and that is a cluster without gateways, not a failure.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s

from aksfw_core.errors import NonRetryable
from aksfw_core.kube import KubernetesList
from aksfw_core.rules.egress import gateway_fields

GROUP = "egressgateway.kubernetes.azure.com"
VERSION = "v1alpha1"
PLURAL = "staticgatewayconfigurations"
KIND = "StaticGatewayConfiguration"


class StaticGateways(KubernetesList):
    """Lists a cluster's StaticGatewayConfigurations (`gateways`)."""

    noun = KIND
    plural = "StaticGatewayConfigurations"

    def gateways(self) -> list[dict[str, Any]]:
        """Every gateway's `gateway_fields`; none where the resource is not served (404).
        The list may take `limits.kube_deadline_s` in all (a cluster has few gateways).

        Raises:
            AuthError: the credential may not list them (a 403 names the permission).
            InputError: an object is malformed (`gateway_fields`).
            Retryable, NonRetryable: as `KubernetesList.list_items` says.
        """
        try:
            return self.list_items(deadline_s=self._limits.kube_deadline_s)
        except NonRetryable as error:
            if error.status == 404:
                return []
            if error.status == 403:
                raise type(error)(
                    f"{error}: the identity needs list on {PLURAL}.{GROUP} (docs/egress.md)",
                    status=403,
                ) from None
            raise

    def _request(self, token: str | None, timeout: tuple[float, float]) -> Any:
        return k8s.CustomObjectsApi(self._api_client).list_cluster_custom_object(
            GROUP,
            VERSION,
            PLURAL,
            limit=self._limits.kube_page_size,
            _continue=token,
            _preload_content=False,
            _request_timeout=timeout,
        )

    def _keep(self, raw: Any) -> Any:
        return gateway_fields(raw)
