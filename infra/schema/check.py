"""Checks the Bicep in infra/ against Azure's REST API models, since no Bicep compiler can
run here: a misspelt or misplaced property, or a resource type or API version Azure does not
have, would otherwise show up only on a user's first `azd up`.

For every resource declared in infra/**/*.bicep (nested, conditional and looped ones too;
`existing` ones for their type@version only), each property of its body is looked up, level
by level, in the model the azure-mgmt-* SDK carries for that type and API version
(rest_models.py). Object and array literals are checked all the way down; expressions
(references, calls, conditionals) are not, nor are free-form objects ({str}, object). Every
file is also parsed with pycep, whose resources must be the ones this check found.

Run it in its own venv (`make check-infra` sets it up from requirements-infra.txt):

    .venv-infra/bin/python infra/schema/check.py [--self-test] [INFRA_DIR]

It prints `file:line: Type@version: problem` for each problem and exits 1 if there is any.
--self-test then proves, on temporary copies of infra/, that an unknown property, a property
at the wrong level and an unknown API version each fail with their file and line.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from bicep import (
    ArrayLiteral,
    BicepSyntaxError,
    Literal,
    Loop,
    ObjectLiteral,
    Property,
    Resource,
    Value,
    resources,
)
from pycep import BicepParser
from rest_models import (
    SCALARS,
    Field,
    Shape,
    UnknownModel,
    discriminator,
    model_class,
    models_module,
    shape,
)

INFRA = Path(__file__).resolve().parent.parent

# Keys of a resource body that Bicep itself takes (`name` is read-only in the models: it is
# the URL's last segment, which Bicep fills in from it).
BICEP_KEYWORDS = frozenset({"name", "parent", "scope", "dependsOn"})

# (resource type, property path) -> why a property the SDK model lacks or marks read-only is
# right. Paths use [*] for array items and {*} for map values.
ALLOWED: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    resource: str  # Type@version
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.resource}: {self.message}"


def _kind(value: Value) -> str:
    if isinstance(value, ObjectLiteral):
        return "an object"
    if isinstance(value, ArrayLiteral | Loop):
        return "an array"
    return "a scalar"


def _hint(tree: Shape, key: str) -> str:
    """Where an unknown key may have been meant: another spelling, or one level down."""
    near = [known for known in tree if known.lower() == key.lower()]
    if near:
        return f" (did you mean {near[0]}?)"
    below = [parent for parent, node in tree.items() if isinstance(node, dict) and key in node]
    return f" (it belongs in {below[0]})" if below else ""


class _ResourceCheck:
    """The problems of one resource's body against its model."""

    def __init__(self, resource: Resource, module: ModuleType, file: str) -> None:
        self.resource = resource
        self.module = module
        self.file = file
        self.label = f"{resource.type}@{resource.api_version}"
        self.problems: list[Problem] = []

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.file, line, self.label, message))

    def allowed(self, path: str) -> bool:
        return (self.resource.type, path) in ALLOWED

    def model(self, literal: ObjectLiteral, model: type[Any], path: str, top: bool = False) -> None:
        tree: Shape = {}
        open_ = False
        for candidate in self.candidates(literal, model):
            candidate_tree, candidate_open = shape(candidate)
            tree = {**candidate_tree, **tree}
            open_ = open_ or candidate_open
        self.tree(literal, tree, open_, path, top)

    def candidates(self, literal: ObjectLiteral, model: type[Any]) -> list[type[Any]]:
        """The model's subclass that literal's discriminator picks; the base class and all its
        subclasses when the discriminator is not a literal string."""
        found = discriminator(model)
        if found is None:
            return [model]
        key, classes = found
        given = next((p.value for p in literal.properties if p.key == key), None)
        if not (isinstance(given, Literal) and isinstance(given.value, str)):
            subclasses = (getattr(self.module, name, None) for name in classes.values())
            return [model, *(c for c in subclasses if isinstance(c, type))]
        subclass = getattr(self.module, classes.get(given.value, ""), None)
        if not isinstance(subclass, type) or subclass is model:
            return [model]
        return self.candidates(literal, subclass)

    def tree(self, literal: ObjectLiteral, tree: Shape, open_: bool, path: str, top: bool) -> None:
        for prop in literal.properties:
            if prop.key is None or (top and prop.key in BICEP_KEYWORDS):
                continue
            where = f"{path}.{prop.key}" if path else prop.key
            node = tree.get(prop.key)
            if node is None:
                if not open_ and not self.allowed(where):
                    self.problem(prop.line, f"unknown property {where}{_hint(tree, prop.key)}")
            elif isinstance(node, Field):
                if node.read_only and not self.allowed(where):
                    self.problem(prop.line, f"read-only property {where}")
                else:
                    self.value(prop.value, node.type, where)
            elif isinstance(prop.value, ObjectLiteral):
                self.tree(prop.value, node, False, where, top=False)
            elif not (isinstance(prop.value, Literal) and prop.value.value is None):
                self.mismatch(prop.value, where, "an object")

    def value(self, value: Value, type_name: str, path: str) -> None:
        """Check value against a REST type: a scalar, [item], {item}, object or a class name."""
        if type_name == "object" or (isinstance(value, Literal) and value.value is None):
            return
        if type_name.startswith("["):
            self.array(value, type_name[1:-1], path)
            return
        if type_name.startswith("{"):
            self.map(value, type_name[1:-1], path)
            return
        model = model_class(self.module, type_name)
        if model is not None:
            if isinstance(value, ObjectLiteral):
                self.model(value, model, path)
            else:
                self.mismatch(value, path, "an object", type_name)
        elif type_name in SCALARS or hasattr(self.module, type_name):  # an enum
            self.mismatch(value, path, "a scalar", type_name)

    def array(self, value: Value, item_type: str, path: str) -> None:
        if isinstance(value, ArrayLiteral):
            for item in value.items:
                self.value(item, item_type, f"{path}[*]")
        elif isinstance(value, Loop):
            self.value(value.body, item_type, f"{path}[*]")
        else:
            self.mismatch(value, path, "an array")

    def map(self, value: Value, item_type: str, path: str) -> None:
        """An object whose values are all of item_type; free-form ones ({str}) are not checked."""
        if not isinstance(value, ObjectLiteral):
            self.mismatch(value, path, "an object")
        elif model_class(self.module, item_type) is not None:
            for prop in value.properties:
                self.value(prop.value, item_type, f"{path}.{{*}}")

    def mismatch(self, value: Value, path: str, expected: str, type_name: str = "") -> None:
        """A problem when a literal is not of the expected shape; expressions pass."""
        if isinstance(value, ObjectLiteral | ArrayLiteral | Loop | Literal):
            got = _kind(value)
            if got != expected and not self.allowed(path):
                what = f"{expected} ({type_name})" if type_name else expected
                self.problem(value.line, f"{path}: expected {what}, got {got}")


def check_resource(resource: Resource, file: str) -> list[Problem]:
    label = f"{resource.type}@{resource.api_version}"
    try:
        module, model = models_module(resource.type, resource.api_version)
    except UnknownModel as error:
        return [Problem(file, resource.line, label, str(error))]
    if resource.existing or resource.body is None:
        return []
    check = _ResourceCheck(resource, module, file)
    check.model(resource.body, model, "", top=True)
    return check.problems


@functools.cache
def _pycep_resources(text: str) -> frozenset[tuple[str, str, str, bool]]:
    parsed = BicepParser().parse(text=text)
    return frozenset(
        (symbol, r["type"], r["api_version"], bool(r["existing"]))
        for symbol, r in (parsed.get("resources") or {}).items()
    )


def check(infra: Path) -> list[Problem]:
    """The problems of every .bicep file under infra, in file and line order."""
    problems: list[Problem] = []
    for path in sorted(infra.rglob("*.bicep")):
        file = str(path.relative_to(infra.parent))
        try:
            declared = resources(path)
        except BicepSyntaxError as error:
            problems.append(Problem(file, 1, "-", f"cannot read: {error}"))
            continue
        try:
            parsed = _pycep_resources(path.read_text())
        except Exception as error:  # pycep raises lark's many error types
            problems.append(Problem(file, 1, "-", f"pycep cannot parse it: {error}"))
            parsed = None
        read = {(r.qualified, r.type, r.api_version, r.existing) for r in declared}
        if parsed is not None and parsed != read:
            problems.append(
                Problem(file, 1, "-", f"pycep and this check disagree: {sorted(parsed ^ read)}")
            )
        for resource in sorted(declared, key=lambda r: r.line):
            problems.extend(check_resource(resource, file))
    return problems


# --- self-test --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Mutation:
    name: str
    file: Path  # relative to infra/
    line: int  # 1-based; insert before it, or replace in it
    insert: str | None
    replace: tuple[str, str] | None
    expected_line: int
    expected: str  # text the problem's message must contain


def _mutations(infra: Path) -> Iterator[_Mutation]:
    """Three breakages of the first resource with a `properties` object that checks clean."""
    for path in sorted(infra.rglob("*.bicep")):
        for resource in sorted(resources(path), key=lambda r: r.line):
            body = resource.body
            props = (
                next((p for p in body.properties if p.key == "properties"), None) if body else None
            )
            if (
                resource.existing
                or not isinstance(props, Property)
                or not isinstance(props.value, ObjectLiteral)
                or check_resource(resource, str(path))
                or f"@{resource.api_version}'"
                not in path.read_text().splitlines()[resource.line - 1]
            ):
                continue
            model = models_module(resource.type, resource.api_version)[1]
            top_level, _ = shape(model)
            inner = [
                p.key
                for p in props.value.properties
                if p.key and p.key not in top_level and p.key not in BICEP_KEYWORDS
            ]
            if not inner:
                continue
            indent = path.read_text().splitlines()[props.line - 1]
            indent = indent[: len(indent) - len(indent.lstrip())]
            file = path.relative_to(infra)
            yield _Mutation(
                "unknown property",
                file,
                props.line + 1,
                f"{indent}  aksfwSelfTestUnknown: true",
                None,
                props.line + 1,
                "unknown property properties.aksfwSelfTestUnknown",
            )
            yield _Mutation(
                "property at the wrong level",
                file,
                props.line,
                f"{indent}{inner[0]}: null",
                None,
                props.line,
                f"unknown property {inner[0]}",
            )
            yield _Mutation(
                "unknown API version",
                file,
                resource.line,
                None,
                (f"@{resource.api_version}'", "@2000-01-01'"),
                resource.line,
                "unknown API version",
            )
            return
    raise SystemExit("self-test: no resource with a `properties` object to break")


def self_test(infra: Path) -> list[str]:
    """Each mutation, applied to a copy of infra, must fail at its file and line."""
    failures: list[str] = []
    for mutation in _mutations(infra):
        with tempfile.TemporaryDirectory() as temporary:
            copy = Path(temporary) / infra.name
            shutil.copytree(infra, copy, ignore=shutil.ignore_patterns("schema"))
            target = copy / mutation.file
            lines = target.read_text().splitlines(keepends=True)
            if mutation.insert is not None:
                lines.insert(mutation.line - 1, mutation.insert + "\n")
            if mutation.replace is not None:
                old, new = mutation.replace
                lines[mutation.line - 1] = lines[mutation.line - 1].replace(old, new)
            target.write_text("".join(lines))
            problems = check(copy)
        file = str(Path(infra.name) / mutation.file)
        hits = [
            p
            for p in problems
            if p.file == file
            and p.line == mutation.expected_line
            and mutation.expected in p.message
        ]
        status = "fails as it should" if hits else "NOT CAUGHT"
        print(f"self-test: {mutation.name} at {file}:{mutation.expected_line}: {status}")
        for problem in hits:
            print(f"    {problem}")
        if not hits:
            failures.append(
                f"{mutation.name}: expected {file}:{mutation.expected_line}: "
                f"…{mutation.expected}…, got {[str(p) for p in problems]}"
            )
    return failures


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
    failures = self_test(infra) if args.self_test else []
    for failure in failures:
        print(f"self-test failed: {failure}")
    return 1 if problems or failures else 0


if __name__ == "__main__":
    sys.exit(main())
