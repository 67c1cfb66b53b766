"""The release's version in one place (docs/release.md): `aksfw_core.__version__`, which
pyproject.toml reads, `aksfw --version` prints and CHANGELOG.md's top release entry names;
and a LICENSE beside them."""

from __future__ import annotations

import ast
import re
import tomllib
from datetime import date
from importlib import metadata

from packaging.version import Version

import aksfw_core
from aksfw_core.cli.program import main
from tests.support import REPO_ROOT

CHANGELOG = REPO_ROOT / "CHANGELOG.md"
ENTRY = re.compile(r"^## \[(?P<version>[^\]]+)\](?: - (?P<date>\S+))?\s*$", re.M)


def changelog_entries() -> list[tuple[str, str | None]]:
    """(version, date) of every `## [...]` heading, top first; Unreleased has no date."""
    return [(m["version"], m["date"]) for m in ENTRY.finditer(CHANGELOG.read_text())]


def released_entries() -> list[tuple[Version, date]]:
    return [
        (Version(version), date.fromisoformat(day or ""))
        for version, day in changelog_entries()
        if version != "Unreleased"
    ]


def test_the_changelog_opens_with_unreleased_then_the_current_version():
    entries = changelog_entries()
    assert entries[0] == ("Unreleased", None), "keep an empty [Unreleased] entry on top"
    top_version, _ = released_entries()[0]
    assert str(top_version) == aksfw_core.__version__


def test_released_entries_are_dated_and_newest_first():
    released = released_entries()
    assert released
    versions = [version for version, _ in released]
    days = [day for _, day in released]
    assert versions == sorted(versions, reverse=True)
    assert len(set(versions)) == len(versions)
    assert days == sorted(days, reverse=True)


def test_the_version_is_written_in_aksfw_core_only():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    dynamic = project["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "aksfw_core.__version__"}
    # setuptools reads the attribute without importing the package: it must stay a literal.
    module = ast.parse((REPO_ROOT / "aksfw_core" / "__init__.py").read_text())
    assigned = [
        node.value.value
        for node in module.body
        if isinstance(node, ast.Assign)
        and [getattr(target, "id", None) for target in node.targets] == ["__version__"]
        and isinstance(node.value, ast.Constant)
    ]
    assert assigned == [aksfw_core.__version__]
    assert str(Version(aksfw_core.__version__)) == aksfw_core.__version__
    # azure.yaml's template metadata carries no second copy of it.
    assert aksfw_core.__version__ not in (REPO_ROOT / "azure.yaml").read_text()


def test_the_installed_package_and_version_flag_say_the_same(capsys):
    installed = metadata.version("aksfw")
    assert installed == aksfw_core.__version__, (
        "the installed metadata is stale: .venv/bin/pip install --no-deps -e ."
    )
    try:
        main(["--version"])
    except SystemExit as done:
        assert done.code == 0
    assert capsys.readouterr().out == f"aksfw {aksfw_core.__version__}\n"


def test_the_license_is_mit_as_pyproject_says():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    text = (REPO_ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 the aksfw authors" in text
