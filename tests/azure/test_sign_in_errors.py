"""A failed sign-in, as azure-identity raises it, through `transport.azure_errors`: no way
to sign in is the `az login` advice, Entra ID refusing keeps Entra's reason, Entra briefly
unavailable is `Retryable`; and the watcher's publish loop backs off through such an outage
instead of exiting. Real azure-identity exception objects, no network beyond the fake topic."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline.transport import HttpResponse
from azure.core.rest import HttpRequest

from aksfw_core.azure.publisher import ChangePublisher
from aksfw_core.errors import AuthError, NonRetryable, Retryable
from aksfw_core.transport import azure_errors, entra_refusal
from aksfw_core.watcher.publishing import DebouncedPublisher
from aksfw_local.fakes.eventgrid import FakeEventGridTopic
from tests.support.eventgrid import LIMITS
from tests.support.watcher import FakeClock, wait_until

CLUSTER = (
    "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-prod/providers/"
    "Microsoft.ContainerService/managedClusters/aks-prod1"
)


def chain_failure(workload_identity: str) -> str:
    """The message `DefaultAzureCredential` (a ChainedTokenCredential) raises with."""
    return (
        "DefaultAzureCredential failed to retrieve a token from the included credentials.\n"
        "Attempted credentials:\n"
        "\tEnvironmentCredential: EnvironmentCredential authentication unavailable. "
        "Environment variables are not fully configured.\n"
        f"\tWorkloadIdentityCredential: {workload_identity}\n"
        "To mitigate this issue, please refer to the troubleshooting guidelines here at "
        "https://aka.ms/azsdk/python/identity/defaultazurecredential/troubleshoot."
    )


FEDERATION_REFUSED = chain_failure(
    "Microsoft Entra ID error '(invalid_client) AADSTS700213: No matching federated identity "
    "record found for presented assertion subject 'system:serviceaccount:aksfw:watcher'. "
    "Please note that the matching is done using a case-sensitive comparison. Trace ID: "
    "0000 Correlation ID: 1111 Timestamp: 2026-01-01 00:00:00Z'"
)
ENTRA_UNAVAILABLE = chain_failure(
    "Microsoft Entra ID error '(temporarily_unavailable) AADSTS50196: The server is "
    "temporarily unavailable. Trace ID: 0000'"
)


class _Answer(HttpResponse):
    """A token endpoint's answer, as azure-core hands it to azure-identity."""

    def __init__(self, status: int) -> None:
        request = HttpRequest("POST", "https://login.microsoftonline.com/t/oauth2/v2.0/token")
        super().__init__(request, None)  # type: ignore[arg-type]
        self.status_code = status
        self.headers = {"Retry-After": "7"} if status == 503 else {}


def classified(error: Exception) -> Exception:
    with pytest.raises(Exception) as caught, azure_errors("publish x", "Event Grid"):
        raise error
    return caught.value


def test_a_refused_federated_assertion_keeps_entras_reason():
    error = classified(ClientAuthenticationError(message=FEDERATION_REFUSED))
    assert type(error) is AuthError
    assert str(error) == (
        "publish x: Microsoft Entra ID refused to sign in: AADSTS700213: No matching "
        "federated identity record found for presented assertion subject "
        "'system:serviceaccount:aksfw:watcher'"
    )
    assert "az login" not in str(error)


def test_entra_temporarily_unavailable_through_the_chain_is_retryable():
    error = classified(ClientAuthenticationError(message=ENTRA_UNAVAILABLE))
    assert isinstance(error, Retryable) and not isinstance(error, NonRetryable)
    assert "AADSTS50196" in str(error) and "az login" not in str(error)


@pytest.mark.parametrize("code", ["AADSTS90006", "AADSTS90033", "AADSTS90055"])
def test_aadsts_codes_documented_as_transient_are_retryable(code):
    message = chain_failure(f"Microsoft Entra ID error '(invalid_request) {code}: Try again.'")
    assert isinstance(classified(ClientAuthenticationError(message=message)), Retryable)


def test_entra_answering_503_to_the_credential_itself_is_retryable():
    # Once the chain has a credential that worked it asks it alone: its own error, with
    # Entra's answer attached.
    answer = _Answer(503)
    error = classified(ClientAuthenticationError(message="No response content", response=answer))
    assert isinstance(error, Retryable)
    assert error.status == 503 and error.retry_after == 7


def test_entra_refusing_the_credential_itself_keeps_its_reason():
    message = "Microsoft Entra ID error '(invalid_client) AADSTS700213: No matching record. x'"
    error = classified(ClientAuthenticationError(message=message, response=_Answer(400)))
    assert type(error) is AuthError and error.status == 400
    assert str(error).endswith("refused to sign in: AADSTS700213: No matching record")


def test_the_reason_is_cut_at_300_characters():
    reason, transient = entra_refusal(chain_failure("AADSTS700213: " + "x" * 1000))
    assert reason is not None and len(reason) == 300 and not transient


class FlakyEntra:
    """A TokenCredential whose first sign-in fails as `DefaultAzureCredential` does when
    Entra ID is briefly unavailable, then hands out the topic's token."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls = 0

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        if self.calls == 1:
            raise ClientAuthenticationError(message=ENTRA_UNAVAILABLE)
        return AccessToken(self.token, int(time.time()) + 3600)


def test_the_publish_loop_backs_off_through_an_entra_outage_then_publishes():
    clock = FakeClock()
    with FakeEventGridTopic(data_keys={"schemaVersion"}) as topic:
        credential = FlakyEntra(topic.token)
        sender = ChangePublisher(
            topic.endpoint, CLUSTER, credential, LIMITS, ca_file=str(topic.ca_file),
            retry_backoff_s=0,
        )  # fmt: skip
        loop = DebouncedPublisher(
            sender.publish, window_s=1.0, limits=LIMITS, clock=clock, jitter=lambda: 0.0
        )
        errors: list[BaseException] = []

        def run() -> None:
            try:
                loop.run()
            except BaseException as error:
                errors.append(error)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            loop.changed("test")
            wait_until(lambda: clock.waiting)  # the window
            clock.advance(1.0)
            wait_until(lambda: (credential.calls == 1 and clock.waiting) or errors)
            assert errors == [] and loop.published == 0  # backing off, still running
            clock.advance(clock.waits[-1])
            wait_until(lambda: loop.published == 1 or errors)
        finally:
            loop.stop()
            thread.join(5)
            sender.close()
        assert errors == [] and credential.calls == 2
        assert len(topic.received()) == 1
