"""The command line run in the test's process, and the sample Service list with the tags
`aksfw tags` gives it (as cluster prod1, with the selectors of tests/cli/test_cli.py)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from aksfw_core.cli.program import main
from tests.support import REPO_ROOT

SAMPLE = str(REPO_ROOT / "examples" / "services.json")

SAMPLE_TAGS = {
    "10.240.0.7": [
        "aks.prod1.api",
        "aks.prod1.metrics",
        "aks.prod1.svc.app.api",
        "aks.prod1.svc.app.prometheus",
        "aks.prod1.svc.tier.backend",
        "aks_shop.prod1.api",
    ],
    "20.50.10.11": [
        "aks.prod1.svc.app.web",
        "aks.prod1.svc.tier.frontend",
        "aks.prod1.web",
        "aks_front.prod1.web",
        "aks_shop.prod1.web",
    ],
}


def run(
    capsys: pytest.CaptureFixture[str], *argv: str, hidden: Iterable[str] = ()
) -> tuple[int, str, str]:
    """`aksfw ARGV`: its exit code (argparse's own refusals included), stdout and stderr.

    None of `hidden` may show in either: a secret the command was given, or the exception
    class names a person should never read."""
    try:
        code = main(list(argv))
    except SystemExit as exited:
        code = int(exited.code or 0)
    out, err = capsys.readouterr()
    shown = [text for text in hidden if text in out + err]
    assert shown == [], f"{shown} in\n{out}{err}"
    return code, out, err
