"""A fake Kubernetes API server (Services, and Static Egress Gateways) that the real
``kubernetes`` client accepts.

Serves HTTPS on 127.0.0.1 with a throw-away CA (``tls.py``) and bearer-token auth:

* ``GET /api/v1/services`` and ``GET /api/v1/namespaces/{ns}/services`` return a
  ``ServiceList``, paged with ``limit`` / ``continue`` like the real API server: the
  first page takes a snapshot, later pages are served from it, the continue token is
  opaque and an unknown or expired one answers ``410 Gone`` (``reason: Expired``).
  ``labelSelector`` (equality forms) and ``fieldSelector`` (``metadata.name``,
  ``metadata.namespace``) are honoured.
* ``GET /api/v1/namespaces/{ns}/services/{name}`` returns one Service.
* ``GET /apis/egressgateway.kubernetes.azure.com/v1alpha1/staticgatewayconfigurations`` (and
  its ``namespaces/{ns}/`` form) returns a ``StaticGatewayConfigurationList`` of
  ``gateways``, paged as Services are (no watch); while ``gateways`` is None the resource
  is not served (Static Egress Gateway not enabled) and the answer is ``404 NotFound``.
* ``watch=true`` on either list path streams chunked JSON lines (``{"type": ...,
  "object": ...}``) from ``resourceVersion`` on, like the real API server: ``ADDED``,
  ``MODIFIED``, ``DELETED`` for each change, ``BOOKMARK`` (with ``allowWatchBookmarks``)
  every ``bookmark_interval_s`` and when the stream ends after ``timeoutSeconds``, and an
  ``ERROR`` event holding a 410 Status when the requested version is older than the kept
  history (``expire_history``; ``gone_as_http`` answers HTTP 410 instead). Knobs:
  ``drop_watch`` ends the next streams abruptly (no final chunk), ``watch_forbidden``
  answers watches with 403 while lists still work.

Every change bumps ``resource_version`` (a counter) and stamps it on the object. Tests
set ``services`` (see ``service()`` for a realistic Service dict; an assignment is
diffed against the previous one into watch events) or call ``update_service`` /
``delete_service``, set ``gateways`` (see ``gateway()``), queue HTTP errors with ``inject``
(for one kind of list with ``resource``) and read the request log in
``requests``.
``write_kubeconfig`` writes a kubeconfig (as JSON, which is valid YAML) for
``kubernetes.config.new_client_from_config``. The server lifecycle comes from
``TlsFakeServer`` (``server.py``).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import itertools
import json
import re
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from .server import HttpRequest, HttpResponse, TlsFakeServer, _Handler, bearer_matches

_JSON = "application/json"
_MAX_SNAPSHOTS = 64
_LIST_PATH = re.compile(r"^/api/v1/(?:namespaces/(?P<ns>[^/]+)/)?services/?$")
_GET_PATH = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/services/(?P<name>[^/]+)$")
GATEWAY_API = "egressgateway.kubernetes.azure.com/v1alpha1"
_GATEWAY_LIST_PATH = re.compile(
    r"^/apis/egressgateway\.kubernetes\.azure\.com/v1alpha1/"
    r"(?:namespaces/(?P<ns>[^/]+)/)?staticgatewayconfigurations/?$"
)
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
_EXPIRED_MESSAGE = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter."
)
_resource_versions = itertools.count(1000)
_node_ports = itertools.count()


class RecordedRequest(NamedTuple):
    """One request as the fake received it."""

    path: str
    query: dict[str, str]
    had_valid_token: bool


def status_body(code: int, message: str, reason: str | None = None) -> dict[str, Any]:
    """A Kubernetes ``Status`` object for a failed request."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or _REASONS.get(code, "Unknown"),
        "code": code,
    }


def service(
    name: str,
    namespace: str = "default",
    type: str = "LoadBalancer",
    ips: Iterable[str] = (),
    hostnames: Iterable[str] = (),
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A realistic Service as the API server returns it in a list (no kind/apiVersion).

    ``ips`` and ``hostnames`` become ``status.loadBalancer.ingress`` entries.
    """
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": str(uuid.uuid4()),
        "resourceVersion": str(next(_resource_versions)),
        "creationTimestamp": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)

    spec: dict[str, Any] = {"type": type, "sessionAffinity": "None"}
    if type == "ExternalName":
        spec["externalName"] = f"{name}.example.invalid"
    else:
        octets = uuid.uuid4().bytes
        cluster_ip = f"10.0.{octets[0]}.{max(octets[1], 1)}"
        port: dict[str, Any] = {"name": "https", "protocol": "TCP", "port": 443, "targetPort": 8443}
        if type in ("NodePort", "LoadBalancer"):
            port["nodePort"] = 30000 + next(_node_ports) % 2768
            spec["externalTrafficPolicy"] = "Cluster"
        if type == "LoadBalancer":
            spec["allocateLoadBalancerNodePorts"] = True
        spec.update(
            {
                "ports": [port],
                "selector": {"app": name},
                "clusterIP": cluster_ip,
                "clusterIPs": [cluster_ip],
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
                "internalTrafficPolicy": "Cluster",
            }
        )

    ingress: list[dict[str, Any]] = [{"ip": ip, "ipMode": "VIP"} for ip in ips]
    ingress.extend({"hostname": hostname} for hostname in hostnames)
    load_balancer: dict[str, Any] = {"ingress": ingress} if ingress else {}
    return {"metadata": metadata, "spec": spec, "status": {"loadBalancer": load_balancer}}


def gateway(
    name: str, namespace: str = "default", prefix: str | None = None, nodepool: str = "gwpool"
) -> dict[str, Any]:
    """A StaticGatewayConfiguration as the API server returns it in a list: ``prefix`` is
    its ``status.egressIpPrefix`` (None: not provisioned yet, no such field), as the
    controller writes it with the gateway server's profile beside it."""
    metadata = {
        "name": name,
        "namespace": namespace,
        "uid": str(uuid.uuid4()),
        "resourceVersion": str(next(_resource_versions)),
        "generation": 1,
        "finalizers": ["static-gateway-configuration-controller.microsoft.com"],
        "creationTimestamp": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    status: dict[str, Any] = {}
    if prefix is not None:
        status = {
            "egressIpPrefix": prefix,
            "gatewayServerProfile": {
                "ip": "10.224.0.250",
                "port": 6000,
                "publicKey": base64.b64encode(secrets.token_bytes(32)).decode(),
                "privateKeySecretRef": {"apiVersion": "v1", "kind": "Secret", "name": name},
            },
        }
    return {
        "apiVersion": GATEWAY_API,
        "kind": "StaticGatewayConfiguration",
        "metadata": metadata,
        "spec": {
            "gatewayNodepoolName": nodepool,
            "excludeCidrs": ["10.0.0.0/8", "172.16.0.0/12", "169.254.169.254/32"],
            "provisionPublicIps": True,
        },
        "status": status,
    }


@dataclass
class _Fault:
    status: int
    remaining: int
    on_page: int | None
    resource: str | None = None


@dataclass(frozen=True)
class _Snapshot:
    scope: tuple[str, str | None, str, str]  # list kind, namespace, label, field selector
    items: list[dict[str, Any]]


def _json(status: int, payload: Mapping[str, Any]) -> HttpResponse:
    return HttpResponse(status, json.dumps(payload).encode(), _JSON)


def _status(code: int, message: str, reason: str | None = None) -> HttpResponse:
    headers = {"Retry-After": "1"} if code == 429 else {}
    return HttpResponse(
        code, json.dumps(status_body(code, message, reason)).encode(), _JSON, headers
    )


class _SelectorError(ValueError):
    pass


def _label_matcher(selector: str) -> list[tuple[str, str, str]]:
    """Parse equality-based label selectors into (op, key, value) terms."""
    if "(" in selector or re.search(r"\s(in|notin)\s", selector):
        raise _SelectorError("set-based label selectors are not supported by this fake")
    terms: list[tuple[str, str, str]] = []
    for raw in selector.split(","):
        term = raw.strip()
        if not term:
            continue
        if term.startswith("!"):
            terms.append(("absent", term[1:].strip(), ""))
        elif "!=" in term:
            key, value = term.split("!=", 1)
            terms.append(("ne", key.strip(), value.strip()))
        elif "==" in term or "=" in term:
            key, value = term.split("==", 1) if "==" in term else term.split("=", 1)
            terms.append(("eq", key.strip(), value.strip()))
        else:
            terms.append(("exists", term, ""))
    return terms


def _labels_match(labels: Mapping[str, str], terms: list[tuple[str, str, str]]) -> bool:
    for op, key, value in terms:
        if op == "absent" and key in labels:
            return False
        if op == "exists" and key not in labels:
            return False
        if op == "eq" and labels.get(key) != value:
            return False
        if op == "ne" and labels.get(key) == value:
            return False
    return True


def _field_matcher(selector: str) -> list[tuple[bool, str, str]]:
    """Parse a fieldSelector into (negated, field, value); only metadata name/namespace."""
    terms: list[tuple[bool, str, str]] = []
    for raw in selector.split(","):
        term = raw.strip()
        if not term:
            continue
        negated = "!=" in term
        field_name, value = re.split(r"!=|==|=", term, maxsplit=1)
        field_name = field_name.strip()
        if field_name not in ("metadata.name", "metadata.namespace"):
            raise _SelectorError(f'field label not supported: "{field_name}"')
        terms.append((negated, field_name, value.strip()))
    return terms


def _fields_match(item: Mapping[str, Any], terms: list[tuple[bool, str, str]]) -> bool:
    metadata = item.get("metadata", {})
    for negated, field_name, value in terms:
        actual = metadata.get(field_name.split(".", 1)[1])
        if (actual == value) == negated:
            return False
    return True


_MAX_HISTORY = 1000
_GONE_MESSAGE = "too old resource version: {asked} ({oldest})"
_ServiceKey = tuple[str, str]


@dataclass(frozen=True)
class _Change:
    """One entry of the watch history: the version it made and what the event says."""

    version: int
    type: str
    object: dict[str, Any]


@dataclass
class _Drop:
    after_events: int
    remaining: int


@dataclass(frozen=True)
class _WatchRequest:
    namespace: str | None
    since: int | None  # None: start with ADDED for every current Service
    timeout_s: float
    bookmarks: bool
    drop_after: int | None


def _service_key(item: object) -> _ServiceKey | None:
    if not isinstance(item, Mapping):
        return None
    metadata = item.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    return (str(metadata.get("namespace", "default")), str(metadata.get("name", "")))


def _padded(item: Mapping[str, Any], size: int) -> dict[str, Any]:
    """``item`` with about ``size`` more bytes in fields aksfw does not read."""
    third = "x" * max(size // 3, 1)
    metadata = dict(item.get("metadata") or {})
    metadata["annotations"] = {
        **(metadata.get("annotations") or {}),
        "kubectl.kubernetes.io/last-applied-configuration": third,
    }
    metadata["managedFields"] = [
        {"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:padding": third}}
    ]
    status = dict(item.get("status") or {})
    status["conditions"] = [{"type": "Padding", "status": "True", "message": third}]
    return {**item, "metadata": metadata, "status": status}


def _without_version(item: Mapping[str, Any]) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(item))
    copy.get("metadata", {}).pop("resourceVersion", None)
    return copy


def _event_line(kind: str, obj: Mapping[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


class _ListKind(NamedTuple):
    resource: str
    list_kind: str
    api_version: str


_SERVICES = _ListKind("services", "ServiceList", "v1")
_GATEWAYS = _ListKind("staticgatewayconfigurations", "StaticGatewayConfigurationList", GATEWAY_API)

_pending_stream = threading.local()


class _StreamingHandler(_Handler):
    """The shared handler, plus chunked watch streams: for a watch the fake's app parks
    the stream in `_pending_stream` and answers "drop", which the base handler leaves
    unanswered; the stream is then written here, in the connection's thread."""

    def _dispatch(self) -> None:
        _pending_stream.writer = None
        super()._dispatch()
        writer: Callable[[_Handler], None] | None = _pending_stream.writer
        _pending_stream.writer = None
        if writer is not None:
            writer(self)


class FakeKubeApi(TlsFakeServer):
    """In-process HTTPS Kubernetes API serving ``services`` (see the module docstring)."""

    tls_prefix = "fake-kube-tls-"

    def __init__(self, token: str = "fake-token", tls_dir: Path | None = None) -> None:
        super().__init__(tls_dir)
        self.token = token
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._version = 1
        self._services: list[dict[str, Any]] = []
        self._known: dict[_ServiceKey, tuple[str, dict[str, Any]]] = {}
        self._history: list[_Change] = []
        self._oldest = 1  # a watch from an older version is answered 410 Gone
        self._drops: list[_Drop] = []
        self.watch_forbidden = False
        """If set, watch requests are refused with 403 (a token with list rights only)."""
        self.gone_as_http = False
        """If set, an expired watch version is answered with HTTP 410 instead of an
        ``ERROR`` event in a 200 stream."""
        self._watch_epoch = 0
        self.bookmark_interval_s: float | None = None
        """Seconds between bookmarks on a watch that allows them (None: only at its end)."""
        self._faults: list[_Fault] = []
        self.gateways: list[dict[str, Any]] | None = None
        """The cluster's StaticGatewayConfigurations; None: the resource is not served."""
        self.delay_s = 0.0
        """Seconds every list request waits before answering (a slow API server)."""
        self.drip_s = 0.0
        """If set, list answers are sent a byte at a time, this many seconds apart."""
        self.endless = False
        """If set, list answers announce a huge body and never finish it."""
        self.item_padding_bytes = 0
        """If set, every Service a list page serves carries about this many more bytes in
        fields aksfw does not read (``managedFields``, an unrelated annotation, a status
        condition), as a bloated or hostile API server serves them; watches and ``services``
        are unchanged."""
        self.continue_mode: str | None = None
        """A broken server's paging: "same" hands out the same continue token with every
        page, "new" a new one with every page, however far the client reads."""
        self._snapshots: OrderedDict[str, _Snapshot] = OrderedDict()
        self._generation = secrets.token_hex(8)
        self._broken_pages = 0

    # ------------------------------------------------------------------ state and changes

    def start(self) -> FakeKubeApi:
        super().start()
        # The shared server has no streamed answers; watches need the handler above.
        self._running()._server.RequestHandlerClass = _StreamingHandler  # type: ignore[union-attr]
        return self

    @property
    def resource_version(self) -> str:
        """The newest resource version (a counter bumped on every change)."""
        return str(self._version)

    @property
    def services(self) -> list[dict[str, Any]]:
        """The cluster's Services; assigning a new list records the differences as watch
        events (in-place changes to the list or its items are not seen by watches)."""
        return self._services

    @services.setter
    def services(self, items: Iterable[dict[str, Any]]) -> None:
        with self._changed:
            self._replace(list(items))

    def update_service(
        self, name: str, change: Callable[[dict[str, Any]], None], namespace: str = "default"
    ) -> None:
        """Apply ``change`` to a copy of one Service and store it (a ``MODIFIED`` event)."""
        with self._changed:
            items = []
            for item in self._services:
                if _service_key(item) == (namespace, name):
                    changed = json.loads(json.dumps(item))
                    change(changed)
                    items.append(changed)
                else:
                    items.append(item)
            self._replace(items)

    def delete_service(self, name: str, namespace: str = "default") -> None:
        """Remove one Service (a ``DELETED`` event)."""
        with self._changed:
            self._replace([i for i in self._services if _service_key(i) != (namespace, name)])

    def expire_history(self) -> None:
        """Forget every change so far: a watch from any older version gets 410 Gone."""
        with self._changed:
            self._history.clear()
            self._oldest = self._version

    def advance(self, versions: int = 1) -> None:
        """Other kinds of objects changed: the resource version moves on without a Service
        event, as it does on a real API server (only a bookmark tells a Service watch)."""
        with self._changed:
            self._version += versions
            self._changed.notify_all()

    def end_watches(self) -> None:
        """End every open watch stream cleanly (a final bookmark if asked for, then the last
        chunk), as an API server does at its timeout."""
        with self._changed:
            self._watch_epoch += 1
            self._changed.notify_all()

    def drop_watch(self, after_events: int = 0, times: int = 1) -> None:
        """End the next ``times`` watch streams abruptly after ``after_events`` events."""
        with self._changed:
            self._drops.append(_Drop(after_events, times))

    def _replace(self, items: list[dict[str, Any]]) -> None:
        """Store ``items`` and record the changes (the caller holds the lock)."""
        seen: set[_ServiceKey] = set()
        for item in items:
            key = _service_key(item)
            if key is None:
                continue
            seen.add(key)
            plain = _without_version(item)
            known = self._known.get(key)
            if known is not None and known[1] == plain:
                item["metadata"]["resourceVersion"] = known[0]
                continue
            self._record("ADDED" if known is None else "MODIFIED", key, item, plain)
        for key in [key for key in self._known if key not in seen]:
            _, plain = self._known.pop(key)
            self._record("DELETED", None, plain, plain)
        self._services = items
        self._changed.notify_all()

    def _record(
        self, kind: str, key: _ServiceKey | None, item: dict[str, Any], plain: dict[str, Any]
    ) -> None:
        self._version += 1
        version = str(self._version)
        item["metadata"]["resourceVersion"] = version
        if key is not None:
            self._known[key] = (version, plain)
        obj = {"kind": "Service", "apiVersion": "v1", **json.loads(json.dumps(item))}
        self._history.append(_Change(self._version, kind, obj))
        if len(self._history) > _MAX_HISTORY:
            dropped = self._history.pop(0)
            self._oldest = dropped.version

    # ------------------------------------------------------------------ test helpers

    def inject(
        self,
        status_code: int,
        count: int = 1,
        on_page: int | None = None,
        resource: str | None = None,
    ) -> None:
        """Answer the next ``count`` list requests (only page ``on_page``, 0-based, if
        given; only lists of ``resource``, ``services`` or ``staticgatewayconfigurations``,
        if given) with ``status_code`` and a Status body; the state is left unchanged."""
        with self._lock:
            self._faults.append(_Fault(status_code, count, on_page, resource))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def expire_continue_tokens(self) -> None:
        """Make every continue token issued so far answer 410 Expired."""
        with self._lock:
            self._snapshots.clear()
            self._generation = secrets.token_hex(8)

    def kubeconfig(
        self,
        context: str = "fake",
        namespace: str | None = None,
        user: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A kubeconfig for this server (embedded CA); the user is this server's bearer
        token unless ``user`` says otherwise (e.g. a kubelogin ``exec`` entry)."""
        context_body: dict[str, str] = {"cluster": f"{context}-cluster", "user": f"{context}-user"}
        if namespace is not None:
            context_body["namespace"] = namespace
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [
                {
                    "name": f"{context}-cluster",
                    "cluster": {
                        "server": self.url,
                        "certificate-authority-data": base64.b64encode(self.ca_pem).decode(),
                    },
                }
            ],
            "users": [{"name": f"{context}-user", "user": dict(user or {"token": self.token})}],
            "contexts": [{"name": context, "context": context_body}],
            "current-context": context,
        }

    def write_kubeconfig(
        self, path: Path, context: str = "fake", namespace: str | None = None
    ) -> Path:
        """Write `kubeconfig()` to ``path`` (JSON, which is valid YAML)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.kubeconfig(context, namespace), indent=2))
        path.chmod(0o600)
        return path

    # ------------------------------------------------------------------ request handling

    def _handle(self, request: HttpRequest) -> HttpResponse:
        split = urlsplit(request.path)
        query = {name: values[0] for name, values in parse_qs(split.query).items()}
        valid = bearer_matches(request.headers.get("Authorization", ""), self.token)
        with self._lock:
            self.requests.append(RecordedRequest(split.path, query, valid))
        if not valid:
            return _status(401, "Unauthorized")
        if request.method != "GET":
            return _status(405, f"the server does not allow this method on {split.path}")
        match = _LIST_PATH.match(split.path)
        if match is not None:
            return self._list(match.group("ns"), query)
        match = _GET_PATH.match(split.path)
        if match is not None:
            return self._get(match.group("ns"), match.group("name"))
        match = _GATEWAY_LIST_PATH.match(split.path)
        if match is not None and self.gateways is not None:
            if query.get("watch", "").lower() in ("true", "1"):
                return _status(400, "watches of gateways are not supported by this fake")
            return self._list(match.group("ns"), query, _GATEWAYS)
        return _status(404, "the server could not find the requested resource")

    def _get(self, namespace: str, name: str) -> HttpResponse:
        for item in list(self.services):
            metadata = item.get("metadata", {})
            if metadata.get("namespace") == namespace and metadata.get("name") == name:
                return _json(200, {"kind": "Service", "apiVersion": "v1", **item})
        return _status(404, f'services "{name}" not found')

    def _token(self, snapshot_id: str, offset: int, page: int) -> str:
        raw = json.dumps({"g": self._generation, "s": snapshot_id, "o": offset, "p": page})
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def _cursor(self, token: str) -> tuple[str, _Snapshot, int, int] | None:
        """Snapshot id, snapshot, offset and page index of a token, or None if unusable."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data = json.loads(raw)
            generation, snapshot_id = str(data["g"]), str(data["s"])
            offset, page = int(data["o"]), int(data["p"])
        except (binascii.Error, ValueError, TypeError, KeyError):
            return None
        snapshot = self._snapshots.get(snapshot_id)
        if generation != self._generation or snapshot is None or offset < 0:
            return None
        return snapshot_id, snapshot, offset, page

    def _take_fault(self, page: int, resource: str) -> int | None:
        for fault in self._faults:
            if fault.resource not in (None, resource):
                continue
            if fault.on_page is None or fault.on_page == page:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault.status
        return None

    def _list(
        self, namespace: str | None, query: dict[str, str], kind: _ListKind | None = None
    ) -> HttpResponse:
        kind = kind or _SERVICES
        source = self.services if kind is _SERVICES else list(self.gateways or [])
        if self.delay_s:
            time.sleep(min(self.delay_s, 5.0))
        if query.get("watch", "").lower() in ("true", "1"):
            return self._watch(namespace, query)
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            return _status(400, f"invalid limit: {query.get('limit')!r}")
        label_selector = query.get("labelSelector", "")
        field_selector = query.get("fieldSelector", "")
        try:
            label_terms = _label_matcher(label_selector)
            field_terms = _field_matcher(field_selector)
        except (_SelectorError, ValueError) as exc:
            return _status(400, f"unable to parse requested selector: {exc}")
        scope = (kind.list_kind, namespace, label_selector, field_selector)
        token = query.get("continue")
        if self.continue_mode is not None:
            with self._lock:
                self._broken_pages += 1
                following = "same" if self.continue_mode == "same" else str(self._broken_pages)
            items = source[:limit] if limit > 0 else source
            metadata = {"resourceVersion": self.resource_version, "continue": following}
            return self._answer({"kind": kind.list_kind, "apiVersion": kind.api_version, "metadata": metadata, "items": items})  # fmt: skip

        with self._lock:
            if token:
                cursor = self._cursor(token)
                if cursor is None:
                    return _status(410, _EXPIRED_MESSAGE, "Expired")
                snapshot_id, snapshot, offset, page = cursor
                if snapshot.scope != scope:
                    return _status(400, "continue token does not match this list request")
            else:
                snapshot_id, offset, page = secrets.token_hex(8), 0, 0
                selected = [
                    item
                    for item in source
                    if (namespace is None or item.get("metadata", {}).get("namespace") == namespace)
                    and _labels_match(item.get("metadata", {}).get("labels") or {}, label_terms)
                    and _fields_match(item, field_terms)
                ]
                selected.sort(
                    key=lambda item: (
                        item.get("metadata", {}).get("namespace", ""),
                        item.get("metadata", {}).get("name", ""),
                    )
                )
                snapshot = _Snapshot(scope, json.loads(json.dumps(selected)))
            fault = self._take_fault(page, kind.resource)
            if fault is not None:
                return _status(fault, f"injected failure ({fault})")
            if not token:
                self._snapshots[snapshot_id] = snapshot
                while len(self._snapshots) > _MAX_SNAPSHOTS:
                    self._snapshots.popitem(last=False)
            end = offset + limit if limit > 0 else len(snapshot.items)
            items = snapshot.items[offset:end]
            metadata: dict[str, Any] = {"resourceVersion": self.resource_version}
            if end < len(snapshot.items):
                metadata["continue"] = self._token(snapshot_id, end, page + 1)
                metadata["remainingItemCount"] = len(snapshot.items) - end
        body = {
            "kind": kind.list_kind,
            "apiVersion": kind.api_version,
            "metadata": metadata,
            "items": items,
        }
        return self._answer(body)

    # ------------------------------------------------------------------ watch streams

    def _watch(self, namespace: str | None, query: dict[str, str]) -> HttpResponse:
        if self.watch_forbidden:
            return _status(
                403,
                'services is forbidden: User "system:serviceaccount:kube-system:aksfw-watch" '
                'cannot watch resource "services" in API group "" at the cluster scope',
            )
        if query.get("labelSelector") or query.get("fieldSelector"):
            return _status(400, "selectors on watches are not supported by this fake")
        try:
            raw = query.get("resourceVersion") or "0"
            since = int(raw)
            timeout_s = float(query.get("timeoutSeconds") or 60)
        except ValueError:
            return _status(400, "invalid resourceVersion or timeoutSeconds")
        with self._changed:
            if since and since < self._oldest and self.gone_as_http:
                return _status(410, _GONE_MESSAGE.format(asked=since, oldest=self._oldest))
            drop_after = None
            if self._drops:
                drop = self._drops[0]
                drop_after = drop.after_events
                drop.remaining -= 1
                if drop.remaining <= 0:
                    self._drops.pop(0)
        request = _WatchRequest(
            namespace=namespace,
            since=since or None,
            timeout_s=min(max(timeout_s, 0.0), 600.0),
            bookmarks=query.get("allowWatchBookmarks", "").lower() in ("true", "1"),
            drop_after=drop_after,
        )
        _pending_stream.writer = lambda handler: self._stream(request, handler)
        return HttpResponse(200, drop=True)

    def _stream(self, request: _WatchRequest, handler: _Handler) -> None:
        """Write one watch answer (in the connection's thread) until its timeout, the
        server's stop, a knob's drop or the client going away."""
        stopping = handler.server.stopping
        ends = time.monotonic() + request.timeout_s
        interval = self.bookmark_interval_s
        next_bookmark = time.monotonic() + interval if interval else None
        sent = 0

        def chunk(data: bytes) -> None:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            handler.wfile.flush()

        def bookmark(version: int) -> None:
            metadata = {"resourceVersion": str(version)}
            chunk(
                _event_line(
                    "BOOKMARK", {"kind": "Service", "apiVersion": "v1", "metadata": metadata}
                )
            )

        try:
            handler.send_response(200)
            handler.send_header("Content-Type", _JSON)
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            with self._changed:
                oldest, last, epoch = self._oldest, self._version, self._watch_epoch
                current = [dict(item) for item in self._services if self._in(request, item)]
            if request.since is not None and request.since < oldest:
                gone = status_body(410, _GONE_MESSAGE.format(asked=request.since, oldest=oldest))
                chunk(_event_line("ERROR", {**gone, "reason": "Expired"}))
                chunk(b"")
                return
            if request.since is None:
                initial = [{"kind": "Service", "apiVersion": "v1", **item} for item in current]
                events = [_Change(last, "ADDED", obj) for obj in initial]
            else:
                last = request.since
                events = []
            while True:
                for event in events:
                    if request.drop_after is not None and sent >= request.drop_after:
                        return  # no final chunk: the client sees a broken stream
                    chunk(_event_line(event.type, event.object))
                    sent += 1
                if request.drop_after is not None and sent >= request.drop_after:
                    return
                now = time.monotonic()
                if now >= ends or stopping.is_set() or self._watch_epoch != epoch:
                    if request.bookmarks:
                        bookmark(last)
                    chunk(b"")
                    return
                if request.bookmarks and next_bookmark is not None and now >= next_bookmark:
                    bookmark(last)
                    next_bookmark = now + (interval or 0.0)
                with self._changed:
                    if self._version <= last:
                        self._changed.wait(min(0.05, max(ends - now, 0.0)))
                    events = [
                        change
                        for change in self._history
                        if change.version > last and self._in(request, change.object)
                    ]
                    last = max(last, self._version)
        except OSError:
            return  # the client went away

    @staticmethod
    def _in(request: _WatchRequest, item: Mapping[str, Any]) -> bool:
        key = _service_key(item)
        return key is not None and request.namespace in (None, key[0])

    def _answer(self, body: dict[str, Any]) -> HttpResponse:
        if self.item_padding_bytes:
            body = {**body, "items": [_padded(i, self.item_padding_bytes) for i in body["items"]]}
        answer = _json(200, body)
        if not (self.drip_s or self.endless):
            return answer
        return HttpResponse(
            200, answer.body, answer.content_type, pace_s=self.drip_s, endless=self.endless
        )
