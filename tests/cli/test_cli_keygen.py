"""`aksfw keygen` against a Panorama that shows its self-signed certificate: the first
step of a deployment works with the pin the app will use, and fails in one line without
it; the password never shows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aksfw_local.fakes.panorama import PanoramaSimulator
from aksfw_local.fakes.tls import sha256_fingerprint, write_self_signed
from tests.support.cli import run
from tests.support.panorama import API_KEY

PASSWORD = "admin-pass"


@pytest.fixture
def self_signed(tmp_path: Path) -> Iterator[tuple[PanoramaSimulator, str]]:
    simulator = PanoramaSimulator(api_key=API_KEY, tls_dir=tmp_path)
    material = write_self_signed(tmp_path, "PA-Panorama")
    with simulator:
        yield simulator, sha256_fingerprint(material.cert_file)
    assert simulator.errors == []


def test_keygen_with_the_pin_prints_the_key_alone(capsys, monkeypatch, self_signed):
    simulator, pin = self_signed
    monkeypatch.setenv("PANORAMA_PASSWORD", PASSWORD)
    line = ["keygen", "--panorama", simulator.url, "--user", "admin", "--certificate-sha256", pin]
    code, out, err = run(capsys, *line, hidden=[PASSWORD])
    assert (code, out, err) == (0, API_KEY + "\n", "")
    [call] = simulator.calls
    assert call.type == "keygen" and not call.key_in_url


def test_keygen_without_trust_fails_in_one_line_naming_both_ways(capsys, monkeypatch, self_signed):
    simulator, _ = self_signed
    monkeypatch.setenv("PANORAMA_PASSWORD", PASSWORD)
    code, out, err = run(
        capsys, "keygen", "--panorama", simulator.url, "--user", "admin", hidden=[PASSWORD]
    )
    assert code == 1 and out == "" and err.count("\n") == 1, err
    assert "is not trusted" in err and "--certificate-sha256 HEX" in err and "--ca-bundle" in err
    assert simulator.calls == []


def test_keygen_with_a_wrong_password_says_so(capsys, monkeypatch, self_signed):
    simulator, pin = self_signed
    monkeypatch.setenv("PANORAMA_PASSWORD", "wrong-pass")
    line = ["keygen", "--panorama", simulator.url, "--user", "admin", "--certificate-sha256", pin]
    code, out, err = run(capsys, *line, hidden=["wrong-pass"])
    assert code == 1 and out == "" and err.count("\n") == 1, err


def test_keygen_without_a_password_or_a_terminal_says_what_to_set(capsys, monkeypatch):
    monkeypatch.delenv("PANORAMA_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, out, err = run(capsys, "keygen", "--panorama", "https://p.example", "--user", "a")
    assert (code, out) == (2, "")
    assert err == "aksfw: set PANORAMA_PASSWORD, or run keygen in a terminal to be asked\n"
