"""The app's two queues by name, and what is in them (Azurite counts exactly)."""

from __future__ import annotations

from azure.storage.queue import QueueClient

UPDATES = "panorama-updates"
RESYNCS = "cluster-resync"


def queue(world, name: str) -> QueueClient:
    return QueueClient.from_connection_string(world.connection_string, name)


def waiting(world, name: str = RESYNCS) -> int:
    """Messages in a queue (the resync queue unless named), visible or not, delayed ones
    included."""
    with queue(world, name) as client:
        return int(client.get_queue_properties().approximate_message_count or 0)
