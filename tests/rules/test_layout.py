"""The shape DESIGN section 4 asks of `aksfw_core`: no module over 500 lines, no class over
250, and a docstring at the top of every module (the layers themselves are import-linter's
contracts in pyproject.toml, run by `make lint`)."""

from __future__ import annotations

import ast

import pytest

from tests.support import REPO_ROOT

CORE = REPO_ROOT / "aksfw_core"
MODULES = sorted(CORE.rglob("*.py"))
MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 250


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(CORE)))
def test_modules_and_classes_stay_small_and_say_what_they_are_for(path):
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_MODULE_LINES
    tree = ast.parse(text)
    if path.name != "__main__.py" and text.strip():
        assert ast.get_docstring(tree), "a module opens with a docstring saying what it is for"
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            assert size <= MAX_CLASS_LINES, f"class {node.name}: {size} lines"


def test_the_limits_are_measured_on_every_module():
    assert len(MODULES) > 60  # the glob found the package
