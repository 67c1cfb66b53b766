"""Event resolution, table-driven: which clusters an event affects, and malformed input."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from azure.eventgrid import SystemEventNames

from aksfw_core.__main__ import main
from aksfw_core.azure.events import (
    WATCHER_CHANGE,
    ChangeKind,
    MalformedEvent,
    ResourceEvent,
    read_event,
    resolve,
    watcher_event,
)
from aksfw_core.azure.inventory import Inventory, MonitoredCluster, inventory_from_json
from aksfw_core.errors import InputError
from aksfw_local.stack import EVENTS

SUB1 = "11111111-1111-1111-1111-111111111111"
SUB2 = "22222222-2222-2222-2222-222222222222"
PROD = f"/subscriptions/{SUB1}/resourceGroups/rg-prod/providers/Microsoft.ContainerService/managedClusters/aks-prod1"
EDGE = f"/subscriptions/{SUB2}/resourceGroups/rg-edge/providers/Microsoft.ContainerService/managedClusters/aks-edge"
OTHER = f"/subscriptions/{SUB1}/resourceGroups/rg-other/providers/Microsoft.ContainerService/managedClusters/aks-other"
PROD_NODES = f"/subscriptions/{SUB1}/resourceGroups/MC_rg-prod_aks-prod1_westeurope"
EDGE_NODES = f"/subscriptions/{SUB2}/resourceGroups/nodes-edge"

INVENTORY = Inventory(
    (
        MonitoredCluster(PROD, "aks-prod1", "prod1", "MC_rg-prod_aks-prod1_westeurope"),
        MonitoredCluster(EDGE, "aks-edge", "aks-edge", "nodes-edge", credential="token"),
    )
)


def eventgrid(event_type, subject, operation=None, topic=f"/subscriptions/{SUB1}"):
    data = {"operationName": operation} if operation else {"status": "Succeeded"}
    return {"id": "1", "topic": topic, "subject": subject, "eventType": event_type,
            "eventTime": "2026-11-27T00:00:00Z", "data": data, "dataVersion": "", "metadataVersion": "1"}  # fmt: skip


def cloudevent(event_type, source, subject=""):
    return {"specversion": "1.0", "id": "1", "type": event_type, "source": source,
            "subject": subject, "time": "2026-11-27T00:00:00Z", "data": {}}  # fmt: skip


W = "Microsoft.Resources.ResourceWriteSuccess"
D = "Microsoft.Resources.ResourceDeleteSuccess"
A = "Microsoft.Resources.ResourceActionSuccess"
RESYNC, TOMBSTONE = ChangeKind.RESYNC, ChangeKind.TOMBSTONE


@pytest.mark.parametrize(
    ("case", "event", "expected"),
    [
        ("cluster write", eventgrid(W, PROD), [(PROD, RESYNC)]),
        ("cluster write, mixed-case ID", eventgrid(W, PROD.upper()), [(PROD, RESYNC)]),
        (
            "cluster in a second subscription",
            eventgrid(W, EDGE, topic=f"/subscriptions/{SUB2}"),
            [(EDGE, RESYNC)],
        ),
        (
            "agent pool write resyncs its cluster",
            eventgrid(W, f"{PROD}/agentPools/np1"),
            [(PROD, RESYNC)],
        ),
        (
            "agent pool delete is not a tombstone",
            eventgrid(D, f"{PROD}/agentPools/np1"),
            [(PROD, RESYNC)],
        ),
        ("cluster delete", eventgrid(D, PROD), [(PROD, TOMBSTONE)]),
        ("cluster delete, lower case", eventgrid(D, PROD.lower()), [(PROD, TOMBSTONE)]),
        ("unknown cluster delete is a tombstone too", eventgrid(D, OTHER), [(OTHER, TOMBSTONE)]),
        (
            "cluster start",
            eventgrid(A, PROD, "Microsoft.ContainerService/managedClusters/start/action"),
            [(PROD, RESYNC)],
        ),
        (
            "cluster stop",
            eventgrid(A, PROD, "Microsoft.ContainerService/managedClusters/stop/action"),
            [(PROD, RESYNC)],
        ),
        (
            "user credential listing",
            eventgrid(
                A,
                PROD,
                "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
            ),
            [],
        ),
        (
            "admin credential listing",
            eventgrid(
                A,
                PROD,
                "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action",
            ),
            [],
        ),
        (
            "run command",
            eventgrid(A, PROD, "Microsoft.ContainerService/managedClusters/runCommand/action"),
            [],
        ),
        ("action without operation name", eventgrid(A, PROD), []),
        (
            "load balancer in node group",
            eventgrid(W, f"{PROD_NODES}/providers/Microsoft.Network/loadBalancers/kubernetes"),
            [(PROD, RESYNC)],
        ),
        (
            "frontend config in node group",
            eventgrid(
                W,
                f"{PROD_NODES}/providers/Microsoft.Network/loadBalancers/kubernetes/frontendIPConfigurations/a1b2",
            ),
            [(PROD, RESYNC)],
        ),
        (
            "public IP delete, upper-case group",
            eventgrid(
                D,
                f"{PROD_NODES.upper()}/providers/Microsoft.Network/publicIPAddresses/kubernetes-a1b2",
            ),
            [(PROD, RESYNC)],
        ),
        (
            "node group of the second subscription",
            eventgrid(
                W, f"{EDGE_NODES}/providers/Microsoft.Network/loadBalancers/kubernetes-internal"
            ),
            [(EDGE, RESYNC)],
        ),
        (
            "same group name, other subscription",
            eventgrid(
                W,
                f"/subscriptions/{SUB2}/resourceGroups/MC_rg-prod_aks-prod1_westeurope/providers/Microsoft.Network/loadBalancers/kubernetes",
            ),
            [],
        ),
        (
            "VM scale set in node group",
            eventgrid(
                W, f"{PROD_NODES}/providers/Microsoft.Compute/virtualMachineScaleSets/aks-np1"
            ),
            [],
        ),
        (
            "public IP join action",
            eventgrid(
                A,
                f"{PROD_NODES}/providers/Microsoft.Network/publicIPAddresses/x",
                "Microsoft.Network/publicIPAddresses/join/action",
            ),
            [],
        ),
        (
            "unrelated storage write",
            eventgrid(
                W,
                f"/subscriptions/{SUB1}/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/st1",
            ),
            [],
        ),
        ("resource group itself", eventgrid(W, PROD_NODES), []),
        (
            "AKS system event (CloudEvent)",
            cloudevent(
                "Microsoft.ContainerService.NewKubernetesVersionAvailable", PROD, "aks-prod1"
            ),
            [(PROD, RESYNC)],
        ),
        (
            "AKS system event (Event Grid)",
            eventgrid(
                "Microsoft.ContainerService.NodePoolRollingSucceeded",
                "aks-prod1",
                topic=PROD.upper(),
            ),
            [(PROD, RESYNC)],
        ),
        (
            "cluster write as CloudEvent",
            cloudevent(W, f"/subscriptions/{SUB1}", PROD),
            [(PROD, RESYNC)],
        ),
        (
            "validation handshake",
            eventgrid("Microsoft.EventGrid.SubscriptionValidationEvent", ""),
            [],
        ),
        (
            "other event type",
            eventgrid("Microsoft.Storage.BlobCreated", "/blobServices/default/containers/x"),
            [],
        ),
        ("a batch of one", [eventgrid(W, PROD)], [(PROD, RESYNC)]),
    ],
)
def test_resolution(case, event, expected):
    resolution = resolve(read_event(event), INVENTORY)
    assert [(c.id, c.kind) for c in resolution.clusters] == expected, case
    assert bool(resolution.reason) is not bool(expected), case
    assert resolution.unknown_cluster is None


@pytest.mark.parametrize(
    "event",
    [
        eventgrid(W, OTHER),
        eventgrid(W, f"{OTHER}/agentPools/np1"),
        cloudevent("Microsoft.ContainerService.ClusterSupportEnded", OTHER),
    ],
)
def test_unknown_cluster_asks_for_an_inventory_refresh(event):
    resolution = resolve(read_event(event), INVENTORY)
    assert resolution.clusters == ()
    assert resolution.unknown_cluster is not None
    assert resolution.unknown_cluster.casefold() == OTHER.casefold()


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ("just a string", "one JSON object"),
        (42, "one JSON object"),
        ([eventgrid(W, PROD), eventgrid(W, PROD)], "one JSON object"),
        ({}, "eventType is missing"),
        ({"eventType": 7}, "eventType is missing"),
        ({"specversion": "1.0", "source": PROD}, "type is missing"),
        ({"specversion": "0.3", "type": W}, "specversion"),
        ({**eventgrid(W, PROD), "subject": None}, "subject is missing"),
        ({**eventgrid(W, PROD), "subject": 12}, "subject must be a string"),
        (eventgrid(W, "not/a/resource/id"), "not a resource ID"),
        (
            eventgrid(
                W,
                f"/subscriptions/{SUB1}/resourceGroups/rg/providers/Microsoft.Network/loadBalancers",
            ),
            "not a resource ID",
        ),
        ({**eventgrid(W, PROD), "data": "text"}, "data must be an object"),
        (
            {**eventgrid(A, PROD), "data": {"operationName": ["x"]}},
            "operationName must be a string",
        ),
        (
            cloudevent("Microsoft.ContainerService.NewKubernetesVersionAvailable", ""),
            "source/topic is missing",
        ),
        (
            cloudevent(
                "Microsoft.ContainerService.NewKubernetesVersionAvailable", f"/subscriptions/{SUB1}"
            ),
            "does not come from a managed cluster",
        ),
        (eventgrid(W, "/subscriptions/" + "9" * 5000), "not a resource ID"),
    ],
)
def test_malformed_events_raise_a_clear_error(event, reason):
    with pytest.raises(MalformedEvent, match=reason):
        resolve(read_event(event), INVENTORY)


def test_malformed_event_is_input_error_so_it_is_dropped_not_retried():
    assert issubclass(MalformedEvent, InputError)


def test_inventory_round_trips_through_json():
    assert inventory_from_json(json.loads(json.dumps(INVENTORY.as_json()))) == INVENTORY


def test_two_clusters_with_the_same_tag_name_are_refused():
    twin = MonitoredCluster(OTHER, "aks-other", "prod1", "nodes")
    with pytest.raises(InputError, match="give one an alias"):
        Inventory((INVENTORY.clusters[0], twin))


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({}, "clusters"),
        ({"clusters": [{"id": "x"}]}, "clusters\\[0\\]"),
        ({"clusters": [{"id": PROD}]}, "nodeResourceGroup"),
        ({"clusters": [{"id": PROD, "nodeResourceGroup": "n", "credential": "pw"}]}, "credential"),
    ],
)
def test_bad_inventory_documents(document, reason):
    with pytest.raises(InputError, match=reason):
        inventory_from_json(document)


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ("cluster-write.eventgrid.json", [(PROD, RESYNC)]),
        ("cluster-write.cloudevent.json", [(PROD, RESYNC)]),
        ("cluster-delete.eventgrid.json", [(PROD, TOMBSTONE)]),
        ("cluster-start.eventgrid.json", [(PROD, RESYNC)]),
        ("cluster-credential.eventgrid.json", []),
        ("lb-write.eventgrid.json", [(PROD, RESYNC)]),
        ("pip-delete.eventgrid.json", [(PROD, RESYNC)]),
        ("unrelated-write.eventgrid.json", []),
        ("aks-new-kubernetes-version.cloudevent.json", [(PROD, RESYNC)]),
        ("aks-node-pool-rolling-succeeded.eventgrid.json", [(PROD, RESYNC)]),
        ("subscription-validation.eventgrid.json", []),
    ],
)
def test_documented_sample_events(file, expected):
    resolution = resolve(read_event(json.loads((EVENTS / file).read_text())), INVENTORY)
    assert [(c.id, c.kind) for c in resolution.clusters] == expected


def test_resolve_event_command_with_an_inventory_file(tmp_path, capsys):
    inventory = tmp_path / "clusters.json"
    inventory.write_text(json.dumps(INVENTORY.as_json()))
    assert (
        main(
            [
                "resolve-event",
                str(EVENTS / "pip-delete.eventgrid.json"),
                "--inventory",
                str(inventory),
            ]
        )
        == 0
    )
    (change,) = json.loads(capsys.readouterr().out)["clusters"]
    assert change["id"] == PROD and change["action"] == "resync"
    assert (
        main(
            [
                "resolve-event",
                str(EVENTS / "cluster-credential.eventgrid.json"),
                "--inventory",
                str(inventory),
            ]
        )
        == 0
    )
    ignored = json.loads(capsys.readouterr().out)
    assert ignored["clusters"] == [] and "listClusterUserCredential" in ignored["reason"]
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"id": "1", "eventType": "Microsoft.Resources.ResourceWriteSuccess", "subject": "nope"}'
    )
    assert main(["resolve-event", str(bad), "--inventory", str(inventory)]) == 2
    assert "not a resource ID" in capsys.readouterr().err


# --- reading through azure-eventgrid's and azure-core's event models ---------------------

SUB1_TOPIC = f"/subscriptions/{SUB1}"
PROD_AS_WRITTEN = PROD.replace("resourceGroups", "resourcegroups")  # Microsoft's write sample
MCS = "Microsoft.ContainerService/managedClusters"
PIP = f"/subscriptions/{SUB1}/resourceGroups/MC_RG-PROD_AKS-PROD1_WESTEUROPE/providers/Microsoft.Network/publicIPAddresses/kubernetes-a4c0f2b1e5d94c3b8f7e6d5c4b3a2f10"
STORAGE = f"/subscriptions/{SUB2}/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/stdataprod01"
# file → what read_event returns besides the event's id: type, topic/source, subject, operation
SAMPLES = {
    "cluster-write.eventgrid.json": (SystemEventNames.ResourceWriteSuccessEventName, SUB1_TOPIC, PROD_AS_WRITTEN, f"{MCS}/write"),
    "cluster-write.cloudevent.json": (SystemEventNames.ResourceWriteSuccessEventName, SUB1_TOPIC, PROD_AS_WRITTEN, f"{MCS}/write"),
    "cluster-delete.eventgrid.json": (SystemEventNames.ResourceDeleteSuccessEventName, SUB1_TOPIC, PROD, f"{MCS}/delete"),
    "cluster-start.eventgrid.json": (SystemEventNames.ResourceActionSuccessEventName, SUB1_TOPIC, PROD, f"{MCS}/start/action"),
    "cluster-credential.eventgrid.json": (SystemEventNames.ResourceActionSuccessEventName, SUB1_TOPIC, PROD, f"{MCS}/listClusterUserCredential/action"),
    "lb-write.eventgrid.json": (SystemEventNames.ResourceWriteSuccessEventName, SUB1_TOPIC, f"{PROD_NODES}/providers/Microsoft.Network/loadBalancers/kubernetes", "Microsoft.Network/loadBalancers/write"),
    "pip-delete.eventgrid.json": (SystemEventNames.ResourceDeleteSuccessEventName, SUB1_TOPIC, PIP, "Microsoft.Network/publicIPAddresses/delete"),
    "unrelated-write.eventgrid.json": (SystemEventNames.ResourceWriteSuccessEventName, f"/subscriptions/{SUB2}", STORAGE, "Microsoft.Storage/storageAccounts/write"),
    "aks-new-kubernetes-version.cloudevent.json": (SystemEventNames.ContainerServiceNewKubernetesVersionAvailableEventName, PROD, "aks-prod1", None),
    "aks-node-pool-rolling-succeeded.eventgrid.json": (SystemEventNames.ContainerServiceNodePoolRollingSucceededEventName, PROD, "aks-prod1", None),
    "subscription-validation.eventgrid.json": (SystemEventNames.EventGridSubscriptionValidationEventName, SUB1_TOPIC, "", None),
}  # fmt: skip


@pytest.mark.parametrize(("file", "expected"), SAMPLES.items())
def test_sample_events_read_in_either_schema(file, expected):
    raw = json.loads((EVENTS / file).read_text())
    event_type, topic, subject, operation = expected
    assert read_event(raw) == ResourceEvent(raw["id"], event_type, subject, topic, operation)


def test_every_sample_event_is_in_the_reading_table():
    assert {p.name for p in EVENTS.glob("*.json")} == set(SAMPLES)


def test_the_same_event_reads_the_same_in_both_schemas():
    as_event_grid = json.loads((EVENTS / "cluster-write.eventgrid.json").read_text())
    as_cloud_event = json.loads((EVENTS / "cluster-write.cloudevent.json").read_text())
    assert read_event(as_event_grid) == read_event(as_cloud_event)


@pytest.mark.parametrize(
    "event_type",
    [
        getattr(SystemEventNames, name)
        for name in dir(SystemEventNames)
        if name.startswith("ContainerService") and name.endswith("EventName")
    ],
)
def test_every_aks_system_event_the_sdk_names_resolves_by_its_source(event_type):
    for event in (cloudevent(event_type, PROD, "aks-prod1"), eventgrid(event_type, "aks-prod1", topic=PROD)):  # fmt: skip
        assert [(c.id, c.kind) for c in resolve(read_event(event), INVENTORY).clusters] == [
            (PROD, RESYNC)
        ]


def test_cloud_event_with_null_data_is_read():
    event = read_event({**cloudevent(W, SUB1_TOPIC, PROD), "data": None})
    assert (event.type, event.subject, event.operation) == (W, PROD, None)


def without(event, key):
    return {k: v for k, v in event.items() if k != key}


AKS_NEW_VERSION = SystemEventNames.ContainerServiceNewKubernetesVersionAvailableEventName


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        # Event Grid schema
        (without(eventgrid(W, PROD), "id"), "id is missing"),
        ({**eventgrid(W, PROD), "id": ""}, "id is missing"),
        ({**eventgrid(W, PROD), "id": 7}, "id is missing or not a string"),
        (without(eventgrid(W, PROD), "eventType"), "eventType is missing"),
        ({**eventgrid(W, PROD), "topic": ["x"]}, "topic must be a string"),
        ({**eventgrid(W, PROD), "data": [1, 2]}, "data must be an object"),
        ({**eventgrid(W, PROD), "data": 3}, "data must be an object"),
        ({**eventgrid(W, PROD), "eventTime": 1764201600}, "eventTime must be a string"),
        ({**eventgrid(W, PROD), "eventTime": "yesterday"}, "not a valid Event Grid event: Invalid datetime"),
        # CloudEvents 1.0
        (without(cloudevent(W, SUB1_TOPIC, PROD), "id"), "id is missing"),
        (without(cloudevent(W, SUB1_TOPIC, PROD), "type"), "type is missing"),
        ({**cloudevent(W, SUB1_TOPIC, PROD), "type": 7}, "type is missing or not a string"),
        (without(cloudevent(W, SUB1_TOPIC, PROD), "source"), "not a valid CloudEvents 1.0 event: .*source"),
        ({**cloudevent(W, SUB1_TOPIC, PROD), "source": 5}, "source must be a string"),
        ({**cloudevent(W, SUB1_TOPIC, PROD), "specversion": "0.3"}, "specversion 1.0"),
        ({**cloudevent(W, SUB1_TOPIC, PROD), "specversion": 1.0}, "specversion 1.0"),
        ({**cloudevent(W, SUB1_TOPIC, PROD), "specversion": None}, "specversion 1.0"),
        ({**cloudevent(W, SUB1_TOPIC, PROD), "data": "text"}, "data must be an object"),
        ({**cloudevent(AKS_NEW_VERSION, PROD), "data": ["1.33"]}, "data must be an object"),
        ({**without(cloudevent(W, SUB1_TOPIC, PROD), "data"), "data_base64": "e30="}, "data must be an object"),
        ({**cloudevent(W, SUB1_TOPIC, PROD), "data_base64": "e30="}, "Only one of data and data_base64"),
        ({**cloudevent(W, SUB1_TOPIC, PROD), "time": 1764201600}, "time must be a string"),
        ({**cloudevent(W, SUB1_TOPIC, PROD), "time": "2026"}, "not a valid CloudEvents 1.0 event"),
        ({**cloudevent(W, SUB1_TOPIC, PROD), "Not-An-Extension": 1}, "Extension attributes"),
        ({**cloudevent(W, SUB1_TOPIC, PROD), "subject": {"id": PROD}}, "subject must be a string"),
        # neither
        (None, "one JSON object"),
        ([], "one JSON object"),
    ],
)  # fmt: skip
def test_malformed_events_are_refused_with_a_reason(event, reason):
    with pytest.raises(MalformedEvent, match=reason):
        read_event(event)


def test_validation_event_data_need_not_be_an_object():
    event = {
        **eventgrid(SystemEventNames.EventGridSubscriptionValidationEventName, ""),
        "data": "x",
    }
    assert read_event(event).type == SystemEventNames.EventGridSubscriptionValidationEventName


# --- the watcher's change notice (`aksfw watch`) ------------------------------------------

WATCHER = "Aksfw.Kubernetes.ServicesChanged"


def watcher_as_event_grid(source):
    """A watcher CloudEvent as the Functions worker hands it on (source → topic)."""
    return {"id": "w1", "topic": source, "subject": "services", "eventType": WATCHER,
            "data": {"schemaVersion": 1}, "dataVersion": ""}  # fmt: skip


@pytest.mark.parametrize(
    ("case", "event", "expected"),
    [
        ("known cluster", cloudevent(WATCHER, PROD, "services"), [(PROD, RESYNC)]),
        ("known cluster, upper case", cloudevent(WATCHER, PROD.upper(), "services"), [(PROD, RESYNC)]),
        ("second subscription", cloudevent(WATCHER, EDGE, "services"), [(EDGE, RESYNC)]),
        ("as the worker passes it on", watcher_as_event_grid(PROD), [(PROD, RESYNC)]),
        ("unknown cluster", cloudevent(WATCHER, OTHER, "services"), []),
    ],
)  # fmt: skip
def test_watcher_events_resync_the_cluster_they_name(case, event, expected):
    resolution = resolve(read_event(event), INVENTORY)
    assert [(c.id, c.kind) for c in resolution.clusters] == expected, case
    # An unknown cluster changes nothing and asks for no early inventory refresh.
    assert resolution.unknown_cluster is None


def test_a_watcher_event_for_an_unknown_cluster_says_why_it_is_ignored():
    resolution = resolve(read_event(cloudevent(WATCHER, OTHER)), INVENTORY)
    assert "not in the inventory" in resolution.reason


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("", "source is missing"),
        ("aks-prod1", "not a resource ID"),
        (f"/subscriptions/{SUB1}", "source is not a managed cluster"),
        (f"{PROD}/agentPools/np1", "source is not a managed cluster"),
        (PROD_NODES, "source is not a managed cluster"),
    ],
)
def test_watcher_events_with_a_malformed_source_are_refused(source, reason):
    with pytest.raises(MalformedEvent, match=reason):
        resolve(read_event(cloudevent(WATCHER, source)), INVENTORY)


def test_the_published_watcher_event_reads_back_as_a_resync_of_its_cluster():
    document = watcher_event(PROD, "e1", datetime(2026, 11, 27, tzinfo=UTC))
    assert document["type"] == WATCHER_CHANGE == WATCHER
    assert document["time"] == "2026-11-27T00:00:00.000Z"
    assert document["data"] == {"schemaVersion": 1}
    resolution = resolve(read_event(document), INVENTORY)
    assert [(c.id, c.kind) for c in resolution.clusters] == [(PROD, RESYNC)]


def test_a_watcher_event_is_only_built_for_a_managed_cluster():
    with pytest.raises(InputError):
        watcher_event(f"{PROD}/agentPools/np1", "e1", datetime.now(UTC))
