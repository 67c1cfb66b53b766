"""Kubernetes' own selector tables (tests/rules/test_selectors.py, transcribed from
k8s.io/apimachinery pkg/labels/selector_test.go) run through `aksfw tags --selector
NAME=EXPR`, under names a user may choose: every expression Kubernetes accepts is accepted
whatever its name, every one it refuses exits 2 with one line, and a selector selects
exactly the Services Kubernetes would.

The names are the ones issue 20 saw refused: an existence test whose label differs from the
selector's name (`c=k01`) is a valid selector, however much `tier=frontend` looks like a
label; such a mistake is caught by evidence instead (tests/cli/test_cli_guards.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from aksfw_core.rules.selectors import parse_selector
from aksfw_local.fakes.kube_api import service
from tests.rules.test_selectors import (
    K8S_LEXES,
    K8S_MATCHES,
    K8S_OPERATORS,
    K8S_PARSES_TO,
    K8S_PRINTS,
    K8S_PRINTS_BACK,
    K8S_REFUSES,
    K8S_REQUIREMENTS,
    K8S_REQUIREMENTS_MATCH,
    requirement,
    selector_of,
)
from tests.support.cli import SAMPLE, run

NAMES = ["c", "all", "x6", "in", "notin", "key", "x", "A-z_0", "n" * 31]
"""Selector names, short and long, and names that are also keys, values and keywords of
the tables' expressions."""

# TestLexer and TestLexerSequence give inputs, not whether Parse accepts them; this is what
# Kubernetes' Parse does with each: `in` and `notin` are read as identifiers where a key
# stands (consume(Values)), `~` and `||` are identifiers NewRequirement refuses as keys, and
# a lone operator or parenthesis is no requirement.
K8S_LEXER_INPUTS_PARSE = {
    "": True,
    ",": False,
    "notin": True,
    "in": True,
    "=": False,
    "==": False,
    ">": False,
    "<": False,
    "!": False,
    "!=": False,
    "(": False,
    ")": False,
    "~": False,
    "||": False,
    "key in ( value )": True,
    "key notin ( value )": True,
    "key in ( value1, value2 )": True,
    "key": True,
    "!key": True,
    "()": False,
    "x in (),y": True,
    "== != (), = notin": False,
    "key>2": True,
    "key<1": True,
}

VALID = sorted(
    {
        *K8S_PRINTS_BACK,
        *(expression for expression, _ in K8S_PARSES_TO),
        *(printed for _, printed in K8S_PRINTS),
        *(expression for expression, fault in K8S_OPERATORS if fault is None),
        *(expression for expression, _, _ in K8S_MATCHES),
        *(text for text, parses in K8S_LEXER_INPUTS_PARSE.items() if parses),
        # TestRequirementConstructor's accepted requirements, as a selector prints them.
        *(str(requirement(k, op, v)) for k, op, v, error in K8S_REQUIREMENTS if error is None),
        # The existence tests issue 20 saw refused under a name other than their label's.
        "k01",
        "app",
        "x6",
        "frontend",
    }
)

INVALID = [
    *K8S_REFUSES,
    *((expression, fault) for expression, fault in K8S_OPERATORS if fault is not None),
    *((text, "") for text, parses in K8S_LEXER_INPUTS_PARSE.items() if not parses),
]

MATCHES = [
    *K8S_MATCHES,
    *(
        (str(selector_of(triples)), labels, match)
        for labels, triples, match in K8S_REQUIREMENTS_MATCH
    ),
]


def test_the_lexer_table_is_covered_whole():
    assert sorted(K8S_LEXER_INPUTS_PARSE) == sorted(text for text, _ in K8S_LEXES)


def tags_of(capsys, names: list[str], expression: str, services: str) -> tuple[int, str, str]:
    """`aksfw tags --cluster c --selector NAME=EXPRESSION ... SERVICES`, one per name."""
    selectors = [arg for name in names for arg in ("--selector", f"{name}={expression}")]
    return run(capsys, "tags", "--cluster", "c", *selectors, services)


def selected(out: str, name: str) -> set[str]:
    """The Services (by name) the selector tagged."""
    prefix = f"aks_{name}.c."
    return {
        tag.removeprefix(prefix)
        for tags in json.loads(out).values()
        for tag in tags
        if tag.startswith(prefix)
    }


SAMPLE_LABELS = {  # the sample's LoadBalancer Services that have an IP
    "web": {"app": "web", "tier": "frontend"},
    "api": {"app": "api", "tier": "backend"},
    "metrics": {"app": "prometheus"},
}


@pytest.mark.parametrize("expression", VALID)
def test_every_selector_kubernetes_accepts_is_accepted_under_any_name(capsys, expression):
    code, out, err = tags_of(capsys, NAMES, expression, SAMPLE)
    assert code == 0, err
    assert not any(line.startswith("aksfw:") for line in err.splitlines())
    selector = parse_selector(expression)
    wanted = {svc for svc, labels in SAMPLE_LABELS.items() if selector.matches(labels)}
    for name in NAMES:
        assert selected(out, name) == wanted, name


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("expression", "fault"), INVALID)
def test_every_selector_kubernetes_refuses_exits_2_with_one_line(capsys, name, expression, fault):
    code, out, err = tags_of(capsys, [name], expression, SAMPLE)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("aksfw: ")
    assert fault in err


def services_file(tmp_path, labels: Mapping[str, str]) -> str:
    path = tmp_path / "services.json"
    items = [service("svc", "ns", ips=["20.0.0.1"], labels=dict(labels))]
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    return str(path)


@pytest.mark.parametrize(("expression", "labels", "match"), MATCHES)
def test_a_selector_selects_what_kubernetes_selects_under_any_name(
    capsys, tmp_path, expression, labels, match
):
    code, out, err = tags_of(capsys, NAMES, expression, services_file(tmp_path, labels))
    assert code == 0, err
    for name in NAMES:
        assert selected(out, name) == ({"svc"} if match else set()), name
    assert err.count("selector-unmatched") == (0 if match else len(NAMES))
