"""The XML API client against the stateful simulator: writes, reads, retries, secrets."""

from __future__ import annotations

import logging

import pytest
from urllib3.exceptions import InsecureRequestWarning

from aksfw_core.endpoints import panorama_url
from aksfw_core.errors import AuthError, InputError, NonRetryable, Retryable
from aksfw_core.limits import Limits
from aksfw_core.panorama.client import PanoramaClient, api_key
from aksfw_core.rules.plan import TagPlan
from aksfw_local.fakes.panorama import Fault, PanoramaSimulator
from tests.support.panorama import API_KEY, settings_for


def fs(*tags):
    return frozenset(tags)


REGISTER = TagPlan(
    register={"10.0.0.1": fs("aks.c1.a", "aks.c1.b"), "2001:db8::1": fs("aks.c1.v6")}
)


def test_apply_registers_and_registered_reads_back(client, panorama):
    result = client.apply(REGISTER)
    assert (result.registered, result.unregistered, result.requests) == (3, 0, 1)
    assert result.failures == ()
    expected = {"10.0.0.1": {"aks.c1.a", "aks.c1.b"}, "2001:db8::1": {"aks.c1.v6"}}
    assert panorama.registered() == expected
    assert client.registered() == {ip: frozenset(tags) for ip, tags in expected.items()}


def test_register_and_unregister_travel_in_one_message(client, panorama):
    panorama.seed("10.0.0.1", ["aks.c1.old"])
    plan = TagPlan(
        register={"10.0.0.1": fs("aks.c1.new")}, unregister={"10.0.0.1": fs("aks.c1.old")}
    )
    result = client.apply(plan)
    assert result.requests == 1
    assert panorama.registered() == {"10.0.0.1": {"aks.c1.new"}}


def test_applying_twice_is_harmless_even_with_strict_duplicate_errors(client, panorama):
    panorama.strict_duplicates = True
    client.apply(REGISTER)
    again = client.apply(REGISTER)
    assert again.failures == ()
    gone = TagPlan(unregister={"10.0.0.1": fs("aks.c1.a"), "9.9.9.9": fs("aks.c1.x")})
    assert client.apply(gone).failures == ()
    assert client.apply(gone).failures == ()
    assert panorama.registered()["10.0.0.1"] == {"aks.c1.b"}


def test_real_per_entry_failures_are_reported_and_the_rest_applied(client, panorama):
    panorama.reject_ips.add("10.0.0.1")
    result = client.apply(REGISTER)
    assert [(f.ip, f.action) for f in result.failures] == [("10.0.0.1", "register")]
    assert panorama.registered() == {"2001:db8::1": {"aks.c1.v6"}}


def test_foreign_tags_filling_an_ip_make_a_reported_failure(client, panorama):
    panorama.seed("10.0.0.1", [f"corp.{i}" for i in range(31)])
    result = client.apply(REGISTER)
    assert len(result.failures) == 1
    assert "maximum" in result.failures[0].message
    assert len(panorama.registered()["10.0.0.1"]) == 32


def test_batches_follow_batch_size(panorama):
    plan = TagPlan(register={f"10.1.{i // 256}.{i % 256}": fs("aks.c1.s") for i in range(250)})
    with PanoramaClient(settings_for(panorama, batch_size=100), api_key(API_KEY)) as client:
        assert client.apply(plan).requests == 3
    assert len(panorama.registered()) == 250


def test_registered_reads_every_page(client, panorama):
    for i in range(1203):
        panorama.seed(f"10.2.{i // 256}.{i % 256}", [f"t{i % 7}"])
    panorama.reset_calls()
    registered = client.registered()
    assert len(registered) == 1203
    assert len(panorama.calls) == 4  # the count, then 3 pages of `all`
    assert registered["10.2.4.178"] == {"t5"}  # i = 1202, 1202 % 7 = 5


@pytest.mark.parametrize(
    "fault",
    [
        Fault.HTTP_500,
        Fault.HTTP_503,
        Fault.HTTP_429,
        Fault.SESSION_TIMEOUT,
        Fault.TRUNCATED,
        Fault.DROP,
    ],
)
def test_transient_faults_are_retried(client, panorama, fault):
    panorama.inject(fault, count=2)
    result = client.apply(REGISTER)
    assert result.requests == 3
    assert len(panorama.registered()) == 2


@pytest.mark.parametrize("fault", [Fault.NOT_XML, Fault.HTTP_501])
def test_an_address_that_is_not_an_xml_api_is_not_retried(client, panorama, fault):
    panorama.inject(fault, count=2)
    with pytest.raises(NonRetryable, match="does not answer like a PAN-OS XML API"):
        client.apply(REGISTER)
    assert client.requests_sent == 1 and panorama.registered() == {}


def test_timeout_is_retried(panorama):
    panorama.slow_seconds = 1.0
    panorama.inject(Fault.SLOW)
    with PanoramaClient(
        settings_for(panorama, limits=Limits(panorama_read_timeout_s=0.2)), api_key(API_KEY)
    ) as client:
        assert client.apply(REGISTER).requests == 2
    assert len(panorama.registered()) == 2


def test_retries_are_bounded(client, panorama, retry_waits):
    panorama.inject(Fault.HTTP_500, count=5)
    with pytest.raises(Retryable):
        client.apply(REGISTER)
    assert client.requests_sent == 3
    assert len(retry_waits) == 2
    assert panorama.registered() == {}


def test_retry_after_is_honoured_as_the_minimum_wait(client, panorama, retry_waits):
    panorama.retry_after = "7"
    panorama.inject(Fault.HTTP_503)
    client.apply(REGISTER)
    assert retry_waits == [7.0]


def test_retry_after_beyond_the_limit_is_left_to_the_queue(client, panorama):
    panorama.retry_after = "3600"
    panorama.inject(Fault.HTTP_429)
    with pytest.raises(Retryable) as caught:
        client.apply(REGISTER)
    assert caught.value.retry_after == 3600
    assert client.requests_sent == 1


def test_auth_refusal_is_not_retried(client, panorama):
    panorama.inject(Fault.FORBIDDEN)
    with pytest.raises(AuthError):
        client.apply(REGISTER)
    assert client.requests_sent == 1


def test_wrong_key_is_an_auth_error_without_the_key_in_it(panorama):
    with (
        PanoramaClient(settings_for(panorama), api_key("wrong-key-xyz")) as client,
        pytest.raises(AuthError) as caught,
    ):
        client.registered()
    assert "wrong-key-xyz" not in str(caught.value)
    assert client.requests_sent == 1


def test_key_only_ever_travels_in_the_header(client, panorama, caplog):
    caplog.set_level(logging.DEBUG)
    panorama.inject(Fault.HTTP_500)
    client.apply(REGISTER)
    client.registered()
    assert panorama.calls
    for call in panorama.calls:
        assert call.key_in_header and not call.key_in_url and not call.key_in_body
    assert API_KEY not in caplog.text
    assert API_KEY not in repr(api_key(API_KEY))


def test_keygen_with_user_and_password(panorama):
    key = PanoramaClient.keygen(settings_for(panorama), "admin", "admin-pass")
    assert key.reveal() == API_KEY
    (call,) = panorama.calls
    assert call.type == "keygen" and not call.key_in_url


def test_keygen_refusal_does_not_echo_the_password(panorama):
    with pytest.raises(AuthError) as caught:
        PanoramaClient.keygen(settings_for(panorama), "admin", "s3cret-pass")
    assert "s3cret-pass" not in str(caught.value)


def test_target_and_vsys_keep_their_own_registrations(panorama):
    serial = "007000000001"
    settings = settings_for(panorama, target=serial, vsys="vsys2")
    with PanoramaClient(settings, api_key(API_KEY)) as client:
        client.apply(REGISTER)
        assert set(client.registered()) == {"10.0.0.1", "2001:db8::1"}
    assert panorama.registered() == {}
    assert set(panorama.registered(target=serial, vsys="vsys2")) == {"10.0.0.1", "2001:db8::1"}


def test_unknown_target_is_a_non_retryable_error(panorama):
    settings = settings_for(panorama, target="000000000999")
    with PanoramaClient(settings, api_key(API_KEY)) as client, pytest.raises(NonRetryable):
        client.apply(REGISTER)
    assert client.requests_sent == 1


def test_tls_with_a_custom_ca_bundle(tmp_path, caplog):
    with PanoramaSimulator(api_key=API_KEY, tls_dir=tmp_path) as simulator:
        trusted = settings_for(simulator, ca_certificates=simulator.ca_pem.decode())
        with PanoramaClient(trusted, api_key(API_KEY)) as client:
            client.apply(REGISTER)
        with (
            PanoramaClient(settings_for(simulator), api_key(API_KEY)) as client,
            pytest.raises(NonRetryable, match="TLS"),
        ):
            client.registered()
        assert client.requests_sent == 1
        insecure = settings_for(simulator, verify_tls=False)
        with (
            pytest.warns(InsecureRequestWarning),
            PanoramaClient(insecure, api_key(API_KEY)) as client,
        ):
            assert len(client.registered()) == 2
        assert "tls_verification_off" in caplog.text


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("panorama.example.com", "https://panorama.example.com"),
        ("panorama.example.com:8443", "https://panorama.example.com:8443"),
        ("https://10.1.1.1/", "https://10.1.1.1"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("https://[2001:db8::1]:443", "https://[2001:db8::1]:443"),
    ],
)
def test_panorama_url_forms(text, url):
    assert panorama_url(text) == url


@pytest.mark.parametrize(
    "text",
    [
        "ftp://x",
        "https://user:pw@host",
        "https://host/?key=abc",
        "https://host#x",
        "https://h:99999",
        "://",
    ],
)
def test_bad_panorama_urls_are_refused(text):
    with pytest.raises(InputError):
        panorama_url(text)


@pytest.mark.parametrize(
    "value",
    [
        "",
        " padded ",
        "line\nbreak",
        "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/x)",
    ],
)
def test_bad_api_keys_are_refused_without_echo(value):
    with pytest.raises(InputError) as caught:
        api_key(value)
    assert value.strip() == "" or value not in str(caught.value)
