"""Event resolution, table-driven: which clusters an event affects, and malformed input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aksfw_core.__main__ import main
from aksfw_core.errors import InputError
from aksfw_core.events import ChangeKind, MalformedEvent, resolve_event
from aksfw_core.inventory import Inventory, MonitoredCluster, inventory_from_json

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
EVENTS = Path(__file__).parent / "data" / "events"


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
    resolution = resolve_event(event, INVENTORY)
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
    resolution = resolve_event(event, INVENTORY)
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
        resolve_event(event, INVENTORY)


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
    resolution = resolve_event(json.loads((EVENTS / file).read_text()), INVENTORY)
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
    bad.write_text('{"eventType": "Microsoft.Resources.ResourceWriteSuccess", "subject": "nope"}')
    assert main(["resolve-event", str(bad), "--inventory", str(inventory)]) == 2
    assert "not a resource ID" in capsys.readouterr().err
