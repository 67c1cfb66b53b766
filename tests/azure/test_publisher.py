"""The watcher's publisher, with the real azure-eventgrid client against the fake Event
Grid topic; and the fake itself, which refuses what Event Grid refuses."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.credentials import AzureKeyCredential

from aksfw_core.azure.events import WATCHER_CHANGE
from aksfw_core.azure.publisher import EVENTGRID_SCOPE, RETRY_TOTAL, ChangePublisher, topic_endpoint
from aksfw_core.errors import AuthError, InputError, NonRetryable, Retryable
from aksfw_local.fakes.eventgrid import BATCH_CONTENT_TYPE, FakeEventGridTopic
from tests.support.eventgrid import LIMITS, Credential

CLUSTER = (
    "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-prod/providers/"
    "Microsoft.ContainerService/managedClusters/aks-prod1"
)
ATTEMPTS = RETRY_TOTAL + 1


@pytest.fixture
def topic() -> Iterator[FakeEventGridTopic]:
    with FakeEventGridTopic(data_keys={"schemaVersion"}) as fake:
        yield fake
        assert fake.errors == []


def publisher(topic: FakeEventGridTopic, token: str | None = None) -> ChangePublisher:
    credential = Credential(topic.token if token is None else token)
    return ChangePublisher(
        topic.endpoint, CLUSTER, credential, LIMITS, ca_file=str(topic.ca_file), retry_backoff_s=0
    )


# --------------------------------------------------------------------------- publisher


def test_one_cloud_event_naming_the_cluster_and_no_service_data(topic):
    credential = Credential(topic.token)
    with ChangePublisher(
        topic.url, CLUSTER, credential, LIMITS, ca_file=str(topic.ca_file)
    ) as sender:
        sender.publish()
        sender.publish()
    first, second = topic.received()
    assert first["specversion"] == "1.0"
    assert first["type"] == WATCHER_CHANGE
    assert first["source"] == CLUSTER
    assert first["subject"] == "services"
    assert first["data"] == {"schemaVersion": 1}
    assert first["id"] != second["id"]
    assert [(r.path, r.authorized) for r in topic.requests] == [("/api/events", True)] * 2
    assert credential.scopes[0] == (EVENTGRID_SCOPE,)


def test_a_refused_token_is_an_auth_error_at_once(topic):
    with publisher(topic, token="someone-else") as sender, pytest.raises(AuthError):
        sender.publish()
    assert len(topic.requests) == 1
    assert topic.received() == []


@pytest.mark.parametrize("status", [403])
def test_forbidden_is_an_auth_error_at_once(topic, status):
    topic.inject(status)
    with publisher(topic) as sender, pytest.raises(AuthError):
        sender.publish()
    assert len(topic.requests) == 1


def test_server_faults_are_retried_a_few_times_then_retryable(topic):
    topic.inject(500, count=10)
    with publisher(topic) as sender, pytest.raises(Retryable) as raised:
        sender.publish()
    assert raised.value.status == 500
    assert len(topic.requests) == ATTEMPTS
    assert topic.received() == []


def test_throttling_is_retried_honouring_retry_after_then_retryable(topic):
    topic.inject(429, count=10, retry_after=1)
    started = time.monotonic()
    with publisher(topic) as sender, pytest.raises(Retryable) as raised:
        sender.publish()
    assert raised.value.status == 429
    assert len(topic.requests) == ATTEMPTS
    assert time.monotonic() - started >= RETRY_TOTAL * 1.0  # waited as asked


def test_a_fault_that_clears_within_the_retries_publishes(topic):
    topic.inject(503, count=RETRY_TOTAL)
    with publisher(topic) as sender:
        sender.publish()
    assert len(topic.requests) == ATTEMPTS
    assert len(topic.received()) == 1


def test_dropped_connections_are_retryable_after_the_retries(topic):
    topic.drop(10)
    with publisher(topic) as sender, pytest.raises(Retryable, match=r"connection to .* failed"):
        sender.publish()
    assert topic.received() == []


def test_no_topic_is_unreachable_and_retryable(tmp_path):
    topic = FakeEventGridTopic(tls_dir=tmp_path).start()  # its CA outlives it
    sender = publisher(topic)
    topic.stop()
    with sender, pytest.raises(Retryable, match="refused the connection"):
        sender.publish()


def test_an_untrusted_certificate_is_not_accepted(topic):
    sender = ChangePublisher(topic.endpoint, CLUSTER, Credential(topic.token), LIMITS)
    with sender, pytest.raises(Retryable):
        sender.publish()
    assert topic.received() == []


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("https://t1.westeurope-1.eventgrid.azure.net", "https://t1.westeurope-1.eventgrid.azure.net/api/events"),
        ("https://t1.westeurope-1.eventgrid.azure.net/api/events", "https://t1.westeurope-1.eventgrid.azure.net/api/events"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/api/events"),
        ("http://localhost:8080/api/events", "http://localhost:8080/api/events"),
    ],
)  # fmt: skip
def test_topic_endpoints(endpoint, expected):
    assert topic_endpoint(endpoint)[0] == expected


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://t1.westeurope-1.eventgrid.azure.net/api/events",
        "ftp://127.0.0.1/",
        "t1.westeurope-1.eventgrid.azure.net",
        "https://user:pw@t1.westeurope-1.eventgrid.azure.net",
        "https://t1.westeurope-1.eventgrid.azure.net/api/events?key=x",
        "https://t1.example:notaport/",
    ],
)
def test_endpoints_that_are_refused(endpoint):
    with pytest.raises(InputError):
        ChangePublisher(endpoint, CLUSTER, Credential("t"), LIMITS)


def test_a_topic_key_is_refused():
    with pytest.raises(InputError, match="Entra ID"):
        ChangePublisher("https://t.eventgrid.azure.net", CLUSTER, AzureKeyCredential("k"), LIMITS)  # type: ignore[arg-type]


@pytest.mark.parametrize("cluster", ["aks-prod1", f"{CLUSTER}/agentPools/np1", "/subscriptions/x"])
def test_the_source_must_be_a_managed_cluster(cluster):
    with pytest.raises(InputError):
        ChangePublisher("https://t.eventgrid.azure.net", cluster, Credential("t"), LIMITS)


def test_a_plain_http_loopback_topic_is_allowed_for_local_fakes():
    sender = ChangePublisher("http://127.0.0.1:9/", CLUSTER, Credential("t"), LIMITS)
    assert sender.endpoint == "http://127.0.0.1:9/api/events"
    sender.close()


# --------------------------------------------------------------------------- the fake


def post(topic: FakeEventGridTopic, body: object, *, token: str | None = None,
         content_type: str = f"{BATCH_CONTENT_TYPE}; charset=utf-8",
         path: str = "/api/events?api-version=2018-01-01") -> tuple[int, dict[str, Any]]:  # fmt: skip
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{topic.url}{path}", data=data, method="POST")
    request.add_header("Content-Type", content_type)
    request.add_header("Authorization", f"Bearer {topic.token if token is None else token}")
    context = ssl.create_default_context(cafile=str(topic.ca_file))
    try:
        with urllib.request.urlopen(request, context=context, timeout=5) as answer:
            return answer.status, {}
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def event(**changes: Any) -> dict[str, Any]:
    document = {"specversion": "1.0", "id": "e1", "source": CLUSTER, "type": WATCHER_CHANGE,
                "subject": "services", "time": "2026-11-27T10:00:00.1234567Z",
                "data": {"schemaVersion": 1}}  # fmt: skip
    document.update(changes)
    return {k: v for k, v in document.items() if v is not ...}


def test_the_fake_accepts_a_valid_batch(topic):
    assert post(topic, [event(), event(id="e2", time="2026-11-27T10:00:00+01:00")])[0] == 200
    assert [e["id"] for e in topic.received()] == ["e1", "e2"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([event(specversion="0.3")], "specversion"),
        ([event(specversion=...)], "specversion"),
        ([event(id=...)], "'id' is missing"),
        ([event(id="")], "'id' is missing"),
        ([event(source=...)], "'source' is missing"),
        ([event(type=7)], "'type' is missing"),
        ([event(time="yesterday")], "RFC 3339"),
        ([event(time="2026-13-01T00:00:00Z")], "RFC 3339"),
        ([event(time="2026-11-27 10:00:00Z")], "RFC 3339"),
        ([event(subject=["x"])], "'subject' must be a string"),
        ([event(data_base64="e30=")], "only one of data and data_base64"),
        ([event(**{"Bad-Name": "x"})], "extension attribute"),
        ([event(data={"schemaVersion": 1, "services": ["web"]})], "unexpected data services"),
        ([event(data="text")], "data must be a JSON object"),
        ([], "non-empty JSON array"),
        (event(), "non-empty JSON array"),
        (b"{not json", "not valid JSON"),
        ([event(), "x"], "Event 1"),
    ],
)
def test_the_fake_refuses_bad_shapes_with_400_and_keeps_nothing(topic, body, message):
    status, answer = post(topic, body)
    assert status == 400
    assert answer["error"]["code"] == "BadRequest"
    assert message in answer["error"]["message"]
    assert topic.received() == []


def test_the_fake_refuses_other_content_types(topic):
    status, answer = post(topic, [event()], content_type="application/json; charset=utf-8")
    assert status == 400 and "content type" in answer["error"]["message"].lower()


def test_the_fake_wants_an_api_version_and_the_topic_path(topic):
    assert post(topic, [event()], path="/api/events")[0] == 400
    assert post(topic, [event()], path="/other?api-version=2018-01-01")[0] == 404


def test_the_fake_checks_the_bearer_token(topic):
    status, answer = post(topic, [event()], token="wrong")
    assert status == 401 and answer["error"]["code"] == "Unauthorized"
    assert topic.received() == []
    assert [r.authorized for r in topic.requests] == [False]


def test_the_fake_refuses_a_batch_over_one_megabyte(topic):
    big = [event(id=str(n), data={"schemaVersion": "x" * 1000}) for n in range(1100)]
    assert post(topic, big)[0] == 413


def test_the_fake_injects_throttling_with_retry_after_and_drops(topic):
    topic.inject(429, retry_after=7)
    request = urllib.request.Request(
        f"{topic.endpoint}?api-version=2018-01-01",
        data=json.dumps([event()]).encode(),
        method="POST",
    )
    request.add_header("Content-Type", BATCH_CONTENT_TYPE)
    request.add_header("Authorization", f"Bearer {topic.token}")
    context = ssl.create_default_context(cafile=str(topic.ca_file))
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, context=context, timeout=5)
    assert raised.value.code == 429 and raised.value.headers["Retry-After"] == "7"
    topic.drop()
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(request, context=context, timeout=5)
    assert post(topic, [event()])[0] == 200


def test_the_fake_without_data_keys_accepts_any_data():
    with FakeEventGridTopic() as fake:
        assert post(fake, [event(data={"anything": [1, 2]})])[0] == 200
        assert fake.errors == []


def test_a_bad_request_is_non_retryable_for_the_publisher(topic):
    topic.inject(400)
    with publisher(topic) as sender, pytest.raises(NonRetryable) as raised:
        sender.publish()
    assert not isinstance(raised.value, AuthError)
    assert len(topic.requests) == 1
