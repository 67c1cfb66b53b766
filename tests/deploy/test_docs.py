"""The README and docs/ as a new user reads them: every relative link and anchor leads
somewhere, every repository path they name exists, no code block holds a `…` to fill in,
every configuration document they show is one the parser takes, every Log Analytics query
uses names the app emits, and the code blocks marked local run as written.

A block is local when the line before its fence is `<!-- local -->`: it needs only this
repository and its `.venv/` (no Azure, no Panorama, no cluster). It runs with `sh` in a
copy of the files it may read, with `.venv/bin` first on PATH and a timeout; it must exit
0, and its output, when it is JSON, must parse. Other helpers change the wording of the
command line's messages, so nothing more is asserted about the output.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from aksfw_core.config import parse_settings
from aksfw_core.limits import Limits
from tests.support import REPO_ROOT
from tests.support.telemetry import kql_problems

DOCS = sorted([REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md")])
LOCAL_MARK = "<!-- local -->"
SHELLS = {"sh", "bash", "shell", "console"}
# What a local block may read: copied into its working directory.
LOCAL_INPUTS = ("examples", "aksfw_core", "aksfw_local", "pyproject.toml")


class Block(NamedTuple):
    path: Path
    line: int
    language: str
    text: str
    local: bool


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        match = re.match(r"^(`{3,})(\S*)", lines[index])
        if not match:
            index += 1
            continue
        fence, language = match.group(1), match.group(2)
        previous = next((line for line in reversed(lines[:index]) if line.strip()), "")
        end = index + 1
        while end < len(lines) and not lines[end].startswith(fence):
            end += 1
        found.append(
            Block(
                path,
                index + 1,
                language,
                "\n".join(lines[index + 1 : end]),
                previous.strip() == LOCAL_MARK,
            )
        )
        index = end + 1
    return found


def prose(path: Path) -> str:
    """The text outside code blocks."""
    return re.sub(r"^(`{3,}).*?^\1", "", path.read_text(), flags=re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(match.group(1)) for match in re.finditer(r"^#{1,6}\s+(.+)$", prose(path), re.M)}


def ids(items: list[Block]) -> list[str]:
    return [f"{block.path.relative_to(REPO_ROOT)}:{block.line}" for block in items]


ALL_BLOCKS = [block for path in DOCS for block in blocks(path)]
LOCAL_BLOCKS = [block for block in ALL_BLOCKS if block.local]


def test_the_docs_exist_and_the_readme_links_every_page():
    readme = (REPO_ROOT / "README.md").read_text()
    pages = [path for path in DOCS if path.parent.name == "docs"]
    assert len(pages) > 10
    for page in pages:
        if page.name != "README.md":
            assert f"](docs/{page.name})" in readme, page.name


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_relative_link_and_anchor_exists(path):
    problems = []
    for target in re.findall(r"\]\(([^)\s]+)\)", prose(path)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{target}: no such heading in {linked.name}")
    assert problems == []


# A backticked word that looks like a path in this repository: a known top-level entry
# followed by more, or a file with an extension under one.
TOP_LEVEL = sorted(
    entry.name for entry in REPO_ROOT.iterdir() if not entry.name.startswith(".") or entry.is_file()
)
PATH_LIKE = re.compile(
    r"`((?:" + "|".join(re.escape(name) for name in TOP_LEVEL) + r")(?:/[\w.\-/]*)?)`"
)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_repository_path_named_exists(path):
    named = {match.group(1) for match in PATH_LIKE.finditer(path.read_text())}
    named = {name for name in named if "/" in name or "." in name}
    missing = sorted(
        name for name in named if not (REPO_ROOT / name.rstrip("/")).exists() and "*" not in name
    )
    assert missing == []


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=ids(ALL_BLOCKS))
def test_no_ellipsis_to_fill_in_inside_code_blocks(block):
    assert "…" not in block.text


CONFIG_BLOCKS = [
    block
    for block in ALL_BLOCKS
    if block.language == "json" and '"panorama"' in block.text and '"subscriptions"' in block.text
]


@pytest.mark.parametrize("block", CONFIG_BLOCKS, ids=ids(CONFIG_BLOCKS))
def test_configuration_examples_parse(block):
    parse_settings(json.loads(block.text))


KUSTO_BLOCKS = [block for block in ALL_BLOCKS if block.language in {"kusto", "kql"}]


def test_there_are_log_analytics_queries():
    assert len(KUSTO_BLOCKS) >= 4


# Log records carry these as attributes besides the metrics' ones (aksfw_core/logs.py).
LOG_ATTRIBUTES = {"event", "cluster", "target"}
CODE_TEXT = "\n".join(path.read_text() for path in (REPO_ROOT / "aksfw_core").rglob("*.py"))


@pytest.mark.parametrize("block", KUSTO_BLOCKS, ids=ids(KUSTO_BLOCKS))
def test_log_analytics_queries_use_names_the_app_emits(block):
    problems = [
        problem
        for problem in kql_problems(block.text)
        if problem not in {f"attribute {name}" for name in LOG_ATTRIBUTES}
    ]
    assert problems == []
    # Log events the query filters on are ones the code logs.
    for event in re.findall(r"'([a-z_]+\.[a-z_.]+)'", block.text):
        if not event.startswith("aksfw."):
            assert f'"{event}"' in CODE_TEXT, event


def test_some_blocks_are_marked_local():
    assert LOCAL_BLOCKS
    for block in LOCAL_BLOCKS:
        assert block.language in SHELLS, f"{block.path.name}:{block.line}: not a shell block"


def _output_parses_when_json(text: str) -> None:
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        json.loads(stripped)


@pytest.mark.subprocess
@pytest.mark.parametrize("block", LOCAL_BLOCKS, ids=ids(LOCAL_BLOCKS))
def test_local_blocks_run_as_written(block, tmp_path):
    venv_bin = REPO_ROOT / ".venv" / "bin"
    assert (venv_bin / "aksfw").exists(), ".venv/bin/aksfw is missing: run make test"
    for name in LOCAL_INPUTS:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    # The blocks name .venv/bin/… as a user in the repository would.
    (tmp_path / ".venv").symlink_to(REPO_ROOT / ".venv")
    env = {
        **os.environ,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(tmp_path),
    }
    for name in ("PANORAMA_API_KEY", "AKSFW_CONFIG", "AKSFW_CONFIG_FILE"):
        env.pop(name, None)
    result = subprocess.run(
        ["sh", "-e", "-c", block.text],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{block.text}\n{result.stderr}"
    _output_parses_when_json(result.stdout)


def test_the_block_reader_finds_marks_and_languages(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n<!-- local -->\n```sh local\necho 1\n```\n\n```sh\necho 2\n```\n"
        "````text\n```\n````\n"
    )
    found = blocks(page)
    assert [(b.language, b.text, b.local) for b in found] == [
        ("sh", "echo 1", True),
        ("sh", "echo 2", False),
        ("text", "```", False),
    ]
    assert slug("8. Uninstall") == "8-uninstall"
    assert slug("Watcher: label changes in seconds") == "watcher-label-changes-in-seconds"
    assert slug("At scale: `python -m bench --scale`") == "at-scale-python--m-bench---scale"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_every_limit_has_a_row_with_its_default_in_the_security_page():
    rows = {}
    for line in (REPO_ROOT / "docs" / "security.md").read_text().splitlines():
        found = re.match(r"\| `(\w+)` \| ([^|]+) \|", line)
        if found:
            rows[found[1]] = found[2].strip()
    for limit in dataclasses.fields(Limits):
        key = re.sub(r"_(\w)", lambda m: m[1].upper(), re.sub(r"_s$", "_seconds", limit.name))
        assert key in rows, f"limits.{key} is not in docs/security.md"
        settings = parse_settings({"limits": {key: limit.default}})
        assert getattr(settings.limits, limit.name) == limit.default
