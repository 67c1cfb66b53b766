"""The queue message schema: round trips, size limits, and malformed input."""

from __future__ import annotations

import base64
import gzip
import inspect
import json

import pytest

from aksfw_core.limits import Limits
from aksfw_core.rules.messages import (
    MAX_QUEUE_TEXT,
    BlobReference,
    MalformedMessage,
    ResyncRequest,
    Snapshot,
    decode,
    decode_payload,
    encode,
    encode_payload,
    encode_reference,
)

CLUSTER = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1"


def snapshot(n_ips=2, **overrides):
    tags = {
        f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}": frozenset(
            {f"aks.aks1.svc{i}", "aks.aks1.svc.app.web"}
        )
        for i in range(n_ips)
    }
    values = {
        "cluster_id": CLUSTER,
        "tag_name": "aks1",
        "target": "panorama",
        "version": 1_700_000_000_000_000_000,
        "tags": tags,
    }
    values.update(overrides)
    return Snapshot(**values)


@pytest.mark.parametrize(
    "message",
    [
        ResyncRequest(CLUSTER, "manual"),
        ResyncRequest(CLUSTER, "follow-up", follow_up=True, audit=True),
        ResyncRequest(CLUSTER, "confirm a held-back mass removal", confirm=True),
        snapshot(),
        snapshot(0, tombstone=True),
        snapshot(target="007000000001", audit=True),
    ],
)
def test_round_trip(message):
    assert decode(encode(message)) == message
    assert json.loads(encode(message))["v"] == 1


def test_large_snapshot_is_compressed_under_the_queue_limit():
    big = snapshot(3000)
    text = encode(big)
    assert len(text) <= MAX_QUEUE_TEXT
    assert json.loads(text)["kind"] == "gzip"
    assert decode(text) == big
    assert len(base64.b64encode(text.encode())) < 64 * 1024


def test_huge_snapshot_still_exceeds_and_is_left_to_a_blob():
    huge = snapshot(60_000)
    assert len(encode(huge)) > MAX_QUEUE_TEXT  # the storage adapter then writes a blob
    assert decode(encode_reference(BlobReference("payloads/x.json"))) == BlobReference(
        "payloads/x.json"
    )


def test_a_shared_payload_is_one_snapshot_without_its_target_for_every_reference():
    huge = snapshot(60_000, audit=True)
    payload = encode_payload(huge)
    assert json.loads(payload)["kind"] == "gzip"  # stored compressed
    assert "007000000001" not in payload
    for serial in ("007000000001", "007000000002"):
        reference = encode_reference(BlobReference("payloads/abc.json", serial))
        assert json.loads(reference) == {
            "v": 2,
            "kind": "blob",
            "blob": "payloads/abc.json",
            "target": serial,
        }
        assert decode(reference) == BlobReference("payloads/abc.json", serial)
        assert decode_payload(payload, serial) == snapshot(60_000, audit=True, target=serial)
    assert encode_payload(huge) == payload  # the same content, the same blob name


def test_a_shared_reference_is_refused_unless_it_points_at_a_shared_payload():
    whole_message = encode(snapshot(3))
    with pytest.raises(MalformedMessage, match="no shared payload"):
        decode_payload(whole_message, "007000000001")
    with pytest.raises(MalformedMessage, match="only through a reference"):
        decode(encode_payload(snapshot(3)))
    old_style = encode_reference(BlobReference("payloads/x.json"))  # a version-1 reader's
    assert json.loads(old_style) == {"v": 1, "kind": "blob", "blob": "payloads/x.json"}
    # Version 1 knows no target: one there is not read as a shared reference.
    assert decode('{"v": 1, "kind": "blob", "blob": "b", "target": "t"}') == BlobReference("b")


def test_fingerprint_ignores_version_and_order_but_not_content():
    a = snapshot(5)
    b = snapshot(5, version=a.version + 1, tags=dict(reversed(list(a.tags.items()))))
    assert a.fingerprint == b.fingerprint
    assert snapshot(5, tombstone=True).fingerprint != a.fingerprint
    assert snapshot(4).fingerprint != a.fingerprint


def gz(document):
    return base64.b64encode(gzip.compress(json.dumps(document).encode(), mtime=0)).decode()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not JSON"),
        ("[]", "JSON object"),
        (b"\xff\xfe", "not JSON"),
        ('{"kind": "resync", "cluster": "x", "reason": "r"}', "schema version"),
        ('{"v": 3, "kind": "resync"}', "schema version"),
        ('{"v": true, "kind": "resync"}', "schema version"),
        ('{"v": 1, "kind": "delete-everything"}', "unknown kind"),
        ('{"v": 1, "kind": "resync", "reason": "r"}', "cluster must be a str"),
        ('{"v": 1, "kind": "resync", "cluster": "", "reason": "r"}', "cluster is empty"),
        (
            '{"v": 1, "kind": "resync", "cluster": "c", "reason": "r", "audit": "yes"}',
            "audit must be a bool",
        ),
        (
            '{"v": 1, "kind": "snapshot", "cluster": "c", "tagName": "t", "target": "panorama", "version": true, "tags": {}}',
            "version must be a int",
        ),
        (
            '{"v": 1, "kind": "snapshot", "cluster": "c", "tagName": "t", "target": "panorama", "version": 1, "tags": []}',
            "tags must be an object",
        ),
        (
            '{"v": 1, "kind": "snapshot", "cluster": "c", "tagName": "t", "target": "panorama", "version": 1, "tags": {"1.1.1.1": "aks.t.x"}}',
            "must be a list",
        ),
        ('{"v": 1, "kind": "gzip", "data": "not base64!"}', "corrupt"),
        (
            json.dumps({"v": 1, "kind": "gzip", "data": base64.b64encode(b"plain").decode()}),
            "corrupt",
        ),
        (
            json.dumps({"v": 1, "kind": "gzip", "data": gz({"v": 1, "kind": "nope"})}),
            "unknown kind",
        ),
        ('{"v": 1, "kind": "blob"}', "blob must be a str"),
        (
            json.dumps({"v": 1, "kind": "gzip", "data": gz({"v": 1, "kind": "gzip", "data": ""})}),
            "gzip inside gzip",
        ),
        ('{"v": 2, "kind": "blob", "blob": "payloads/x.json"}', "target must be a str"),
        ('{"v": 2, "kind": "blob", "blob": "payloads/x.json", "target": ""}', "target is empty"),
        ('{"v": 2, "kind": "payload", "cluster": "c"}', "only through a reference"),
    ],
)
def test_malformed_messages_are_refused_with_a_reason(text, reason):
    with pytest.raises(MalformedMessage, match=reason):
        decode(text)


def test_gzip_bomb_is_refused_past_the_decompressed_cap():
    bomb = json.dumps(
        {
            "v": 1,
            "kind": "gzip",
            "data": base64.b64encode(gzip.compress(b" " * 1_000_000, mtime=0)).decode(),
        }
    )
    with pytest.raises(MalformedMessage, match="unpacks to more than 10000 bytes"):
        decode(bomb, max_bytes=10_000)
    assert decode(encode(snapshot(1)), max_bytes=10_000) == snapshot(1)


def test_the_default_cap_is_the_documented_limit():
    assert inspect.signature(decode).parameters["max_bytes"].default == Limits().max_message_bytes
    with pytest.raises(MalformedMessage, match="larger than"):
        decode(b" " * (Limits().max_message_bytes + 1))


@pytest.mark.parametrize("nesting", ["[" * 100_000, '{"a":' * 100_000, "[" * 50_000 + "]" * 50_000])
def test_json_nested_past_the_parsers_recursion_is_a_malformed_message(nesting):
    with pytest.raises(MalformedMessage, match="nested too deeply"):
        decode(nesting)
    packed = json.dumps({"v": 1, "kind": "gzip", "data": gz_text(nesting)})
    with pytest.raises(MalformedMessage, match="nested too deeply"):
        decode(packed)


def gz_text(text):
    return base64.b64encode(gzip.compress(text.encode(), mtime=0)).decode()


def test_confirm_is_written_only_when_set_and_old_requests_read_as_unconfirmed():
    assert "confirm" not in json.loads(encode(ResyncRequest(CLUSTER, "timer")))
    assert json.loads(encode(ResyncRequest(CLUSTER, "c", confirm=True)))["confirm"] is True
    old = {"v": 1, "kind": "resync", "cluster": CLUSTER, "reason": "timer", "followUp": False}
    request = decode(json.dumps(old))
    assert isinstance(request, ResyncRequest) and request.confirm is False
    with pytest.raises(MalformedMessage, match="confirm must be a bool"):
        decode(json.dumps({**old, "confirm": "yes"}))
