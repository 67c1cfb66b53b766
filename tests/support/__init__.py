"""What the tests share and are not tests themselves: fixtures loaded by `tests/conftest.py`
(`azurite_fixtures`, `flow`), helpers the test modules import, and programs they run.

`REPO_ROOT` is the one way a test finds a file of the repository."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
