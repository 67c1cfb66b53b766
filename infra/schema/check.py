"""Checks the Bicep in infra/ without a Bicep compiler or Azure (neither can run here), so
that a mistake shows up here rather than on a user's first `azd up`:

- properties.py, values.py: every resource's body against Azure's REST API model for its
  type and API version, as the azure-mgmt-* SDKs carry it (rest_models.py): unknown,
  misplaced and read-only properties, shapes, scalar types, enum values, msrest's bounds,
  required properties; values followed through variables, conditionals and loops
  (resolve.py);
- semantics.py: what a Bicep compiler would refuse: undefined names and functions, members
  that do not exist (object keys, resource properties, module outputs), module parameters
  (unknown, missing, of the wrong type, out of bounds) and scopes, extension resources
  (role assignments) scoped where their file cannot deploy, parameter defaults outside
  their own bounds, outputs of the wrong type;
- parameters_file.py: main.parameters.json against main.bicep's parameters;
- every file is also parsed with pycep, whose declarations must be the ones read here.

Run it in its own venv (`make check-infra` sets it up from requirements-infra.txt):

    .venv-infra/bin/python infra/schema/check.py [--self-test] [INFRA_DIR]

It prints `file:line: what: problem` for each problem and exits 1 if there is any.
--self-test then proves, on temporary copies of INFRA_DIR, that each kind of mistake these
checks exist for fails with its file and line (self_test.py).
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from pathlib import Path
from typing import Any

from bicep import read
from parameters_file import check_parameters_file
from problems import Problem
from properties import check_resource
from pycep import BicepParser
from resolve import Resolver
from self_test import self_test
from semantics import FileSemantics
from syntax import BicepFile, Module
from tokens import BicepSyntaxError

INFRA = Path(__file__).resolve().parent.parent


@functools.cache
def _pycep() -> Any:
    return BicepParser()  # building lark's parser takes a while: once per run


@functools.cache
def _pycep_declarations(text: str) -> dict[str, frozenset[Any]]:
    parsed = _pycep().parse(text=text)
    return {
        "resources": frozenset(
            (symbol, r["type"], r["api_version"], bool(r["existing"]))
            for symbol, r in (parsed.get("resources") or {}).items()
        ),
        "params": frozenset(parsed.get("parameters") or {}),
        "variables": frozenset(parsed.get("variables") or {}),
        "modules": frozenset(parsed.get("modules") or {}),
        "outputs": frozenset(parsed.get("outputs") or {}),
    }


def _read_module(module: Module, caller: BicepFile) -> BicepFile | None:
    """The file of a local module (None for a registry module, or one that does not read)."""
    if ":" in module.path or module.path.startswith("br/"):
        return None
    path = caller.path.parent / module.path
    try:
        return read(path)
    except (OSError, BicepSyntaxError):
        return None


def _cross_check(path: Path, file: BicepFile, label: str) -> list[Problem]:
    """pycep's declarations against this reader's."""
    try:
        parsed = _pycep_declarations(path.read_text())
    except Exception as error:  # pycep raises lark's many error types
        return [Problem(label, 1, "-", f"pycep cannot parse it: {error}")]
    read_here = {
        "resources": frozenset(
            (r.qualified, r.type, r.api_version, r.existing) for r in file.resources
        ),
        "params": frozenset(file.params),
        "variables": frozenset(file.variables),
        "modules": frozenset(file.modules),
        "outputs": frozenset(file.outputs),
    }
    return [
        Problem(
            label,
            1,
            "-",
            f"pycep and this check disagree on {kind}: {sorted(map(str, theirs ^ ours))}",
        )
        for kind, ours in read_here.items()
        if (theirs := parsed[kind]) != ours
    ]


def check_file(path: Path, label: str) -> list[Problem]:
    """The problems of one Bicep file (its module calls checked against their files)."""
    try:
        file = read(path)
    except BicepSyntaxError as error:
        line = re.match(r"line (\d+): ", str(error))
        where = int(line.group(1)) if line else 1
        return [Problem(label, where, "-", f"cannot read: {str(error).split(': ', 1)[-1]}")]
    problems = _cross_check(path, file, label)
    resolver = Resolver(file, _read_module)
    for resource in sorted(file.resources, key=lambda r: r.line):
        problems.extend(check_resource(resource, label, resolver))
    for module in file.modules.values():
        if _read_module(module, file) is None and ":" not in module.path:
            problems.append(
                Problem(
                    label,
                    module.line,
                    f"module {module.symbol}",
                    f"{module.path} does not exist or does not read",
                )
            )
    problems.extend(FileSemantics(file, label, resolver).run())
    return problems


def check(infra: Path) -> list[Problem]:
    """The problems of every .bicep file under infra (and of main.parameters.json), in file
    and line order."""
    problems: list[Problem] = []
    for path in sorted(infra.rglob("*.bicep")):
        problems.extend(check_file(path, str(path.relative_to(infra.parent))))
    problems.extend(check_parameters_file(infra))
    return sorted(problems, key=lambda p: (p.file, p.line, p.message))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("infra", nargs="?", type=Path, default=INFRA)
    parser.add_argument("--self-test", action="store_true", help="also prove the check fails")
    args = parser.parse_args(argv)
    infra: Path = args.infra.resolve()
    problems = check(infra)
    for problem in problems:
        print(problem)
    count = len(list(infra.rglob("*.bicep")))
    print(f"schema check: {count} Bicep files, {len(problems)} problems")
    failures: list[str] = []
    if args.self_test:
        failures = self_test(infra, check)
    for failure in failures:
        print(f"self-test failed: {failure}")
    return 1 if problems or failures else 0


if __name__ == "__main__":
    sys.exit(main())
