"""The Panorama API key in the environment, as `aksfw` reads it, for the command line's tests."""

from __future__ import annotations

import pytest

from tests.support.panorama import API_KEY


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv("PANORAMA_API_KEY", API_KEY)
    monkeypatch.delenv("PANORAMA_USER", raising=False)
    monkeypatch.delenv("PANORAMA_PASSWORD", raising=False)
