"""What `azd deploy` puts in the function app's package: function_app.py, host.json,
requirements.txt and aksfw_core/, nothing else. `.funcignore` (gitignore syntax, read here by
tests/support/ignore_file.py) leaves out the rest of the repository and every local
environment and cache that `make test`, `make demo`, `make bench` or azd creates: with a
.funcignore present, azd applies none of its default exclusions (`.venv`, `__pycache__`), so
a virtual environment missing from it would be zipped and uploaded whole.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.support import REPO_ROOT
from tests.support.ignore_file import IgnoreFile

FUNCIGNORE = IgnoreFile.parse((REPO_ROOT / ".funcignore").read_text())
GITIGNORE = IgnoreFile.parse((REPO_ROOT / ".gitignore").read_text())

# What the Functions host needs: the app, its settings and its requirements (installed by
# the remote build).
DEPLOYED = {"function_app.py", "host.json", "requirements.txt", "aksfw_core"}

# Directories the Makefile, pip, pytest, mypy, ruff, hypothesis, npm, Azurite and azd create
# in the work tree; `.venv-3.14` stands for any virtual environment added later.
LOCAL_STATE = [
    ".venv",
    ".venv-checkov",
    ".venv-infra",
    ".venv-runtime",
    ".venv-3.14",
    "node_modules",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    ".azurite",
    ".azure",
    "aksfw.egg-info",
    "build",
    "dist",
    "__pycache__",
    "aksfw_core/__pycache__",
    "aksfw_core/rules/__pycache__",
]


def repository_files() -> list[str]:
    """Every file in the work tree that git does not ignore, tracked or not yet."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [path for path in listing.split("\0") if path and (REPO_ROOT / path).exists()]


@pytest.mark.parametrize("directory", LOCAL_STATE)
def test_local_environments_and_caches_stay_out(directory):
    assert FUNCIGNORE.ignores(directory, is_dir=True)
    assert FUNCIGNORE.ignores(f"{directory}/lib/python3.13/site-packages/x.py", is_dir=False)


def test_compiled_files_and_local_settings_stay_out():
    for path in ("aksfw_core/rules/tags.cpython-313.pyc", "local.settings.json"):
        assert FUNCIGNORE.ignores(path, is_dir=False), path


@pytest.mark.subprocess
def test_the_package_holds_the_app_and_nothing_else():
    deployed = {
        path.split("/")[0]
        for path in repository_files()
        if not FUNCIGNORE.ignores(path, is_dir=False)
    }
    assert deployed == DEPLOYED


@pytest.mark.subprocess
def test_every_file_of_the_app_is_deployed():
    app = [path for path in repository_files() if path.split("/")[0] in DEPLOYED]
    assert "aksfw_core/__init__.py" in app
    assert [path for path in app if FUNCIGNORE.ignores(path, is_dir=False)] == []


def test_what_git_ignores_stays_out_of_the_package():
    # An example path for each .gitignore pattern, at the root and, for unanchored
    # patterns, inside the app's package.
    for pattern in GITIGNORE.patterns:
        assert not pattern.negated, pattern.text
        example = pattern.text.strip("/").replace("**", "x").replace("*", "x")
        places = [example] if pattern.anchored else [example, f"aksfw_core/{example}"]
        for path in places:
            assert GITIGNORE.ignores(path, is_dir=pattern.directory_only), path
            assert FUNCIGNORE.ignores(path, is_dir=pattern.directory_only), path


@pytest.mark.parametrize(
    ("lines", "path", "is_dir", "ignored"),
    [
        (".venv*/", ".venv", True, True),
        (".venv*/", ".venv-runtime", True, True),
        (".venv*/", ".venv-runtime/bin/python", False, True),
        (".venv*/", ".venv-notes", False, False),  # a file: directories only
        (".venv*/", "aksfw_core/.venv-x", True, True),  # unanchored: at any depth
        ("/tests/", "tests/test_x.py", False, True),
        ("/tests/", "aksfw_core/tests", True, False),  # anchored: at the root only
        ("docs/x.md", "docs/x.md", False, True),
        ("docs/x.md", "aksfw_core/docs/x.md", False, False),  # an inner / anchors too
        ("*.pyc", "aksfw_core/rules/a.pyc", False, True),
        ("/requirements-*.txt", "requirements-dev.txt", False, True),
        ("/requirements-*.txt", "requirements.txt", False, False),
        ("**/cache/", "a/b/cache", True, True),
        ("a/**", "a/b/c", False, True),
        ("*.md\n!/README.md", "README.md", False, False),  # the last match decides
        ("/docs/\n!/docs/x.md", "docs/x.md", False, True),  # its directory stays out
        ("# .venv/\n\n", ".venv", True, False),
    ],
)
def test_the_ignore_file_reader_follows_gitignore_rules(lines, path, is_dir, ignored):
    assert IgnoreFile.parse(lines).ignores(path, is_dir=is_dir) is ignored


@pytest.mark.parametrize("line", ["*.py[co]", r"\#notes"])
def test_the_ignore_file_reader_refuses_syntax_it_does_not_know(line):
    with pytest.raises(ValueError, match="not supported"):
        IgnoreFile.parse(line)
