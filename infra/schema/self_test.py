"""`check.py --self-test`: proof that each kind of mistake the check exists for fails, with its
file and line. Each kind is one mutation of a real file in a temporary copy of infra/: the
site is found in the files as they are now (the first property of an enum type written as
a literal, the first module call, …), so the proof follows the files as they change.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bicep import read
from problems import Problem
from properties import BICEP_KEYWORDS, ResourceCheck
from resolve import Resolver
from rest_models import Field, Shape, UnknownModel, model_class, models_module, shape
from syntax import (
    Access,
    ArrayLiteral,
    BicepFile,
    Conditional,
    Literal,
    Module,
    ObjectLiteral,
    Property,
    Reference,
    Resource,
    Value,
)


@dataclass(frozen=True)
class Mutation:
    kind: str
    file: Path  # relative to infra/
    line: int  # 1-based
    old: str | None  # replaced once in that line; "": new is inserted before it; None: deleted
    new: str
    expected: str  # text the problem's message must contain
    expected_line: int = 0  # where it must be reported; 0: at line

    @property
    def where(self) -> int:
        return self.expected_line or self.line

    def apply(self, text: str) -> str:
        lines = text.splitlines(keepends=True)
        if self.old is None:
            del lines[self.line - 1]
        elif self.old == "":
            lines.insert(self.line - 1, self.new + "\n")
        else:
            if self.old not in lines[self.line - 1]:
                raise LookupError(f"{self.file}:{self.line} has no {self.old!r}")
            lines[self.line - 1] = lines[self.line - 1].replace(self.old, self.new, 1)
        return "".join(lines)


class _Sites:
    """Where each kind of mistake can be made in the files of one infra/ folder."""

    def __init__(self, infra: Path) -> None:
        self.infra = infra
        self.paths = sorted(infra.rglob("*.bicep"))
        self.files = {path: read(path) for path in self.paths}
        self.lines = {path: path.read_text().splitlines() for path in self.paths}

    def relative(self, path: Path) -> Path:
        return path.relative_to(self.infra)

    def single_line(self, path: Path, obj: ObjectLiteral, prop: Property) -> bool:
        """Whether prop sits on one line of its own (deleting it leaves valid Bicep)."""
        after = [p.line for p in obj.properties if p.line > prop.line]
        text = self.lines[path][prop.line - 1].strip()
        return bool(after) and min(after) == prop.line + 1 and not text.endswith(("{", "[", "("))

    def properties(self) -> Iterator[tuple[Path, Resource, ObjectLiteral, Property, Field | None]]:
        """Every property written out in a resource body, with its field in the model."""
        for path in self.paths:
            for resource in self.files[path].resources:
                if resource.existing or resource.body is None:
                    continue
                try:
                    _, model = models_module(resource.type, resource.api_version)
                except UnknownModel:
                    continue
                yield from self._walk(path, resource, resource.body, shape(model)[0], True)

    def _walk(
        self, path: Path, resource: Resource, obj: ObjectLiteral, tree: Shape, top: bool
    ) -> Iterator[tuple[Path, Resource, ObjectLiteral, Property, Field | None]]:
        module = models_module(resource.type, resource.api_version)[0]
        for prop in obj.properties:
            if prop.key is None or (top and prop.key in BICEP_KEYWORDS):
                continue
            node = tree.get(prop.key)
            yield path, resource, obj, prop, node if isinstance(node, Field) else None
            if isinstance(node, dict) and isinstance(prop.value, ObjectLiteral):
                yield from self._walk(path, resource, prop.value, node, False)
            elif isinstance(node, Field):
                inner = node.type.strip("[]")
                model = model_class(module, inner)
                values = prop.value.items if isinstance(prop.value, ArrayLiteral) else (prop.value,)
                for value in values:
                    if model is not None and isinstance(value, ObjectLiteral):
                        yield from self._walk(path, resource, value, shape(model)[0], False)

    def module_calls(self) -> Iterator[tuple[Path, BicepFile, Module, ObjectLiteral, BicepFile]]:
        for path in self.paths:
            caller = self.files[path]
            for module in caller.modules.values():
                params = module.body.get("params") if module.body else None
                target = path.parent / module.path
                if params and isinstance(params.value, ObjectLiteral) and target in self.files:
                    yield path, caller, module, params.value, self.files[target]


def _literal_text(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"'{value}'" if isinstance(value, str) else str(value)


def _first(found: Iterator[Mutation], kind: str) -> Mutation:
    mutation = next(found, None)
    if mutation is None:
        raise SystemExit(f"self-test: no site in infra/ to make this mistake: {kind}")
    return mutation


def _schema(sites: _Sites) -> Iterator[Mutation]:
    """The first checks: an unknown property, one a level too high, an unknown version."""
    for path, resource, _, prop, _ in sites.properties():
        if prop.key != "properties" or not isinstance(prop.value, ObjectLiteral):
            continue
        top = shape(models_module(resource.type, resource.api_version)[1])[0]
        inner = [p.key for p in prop.value.properties if p.key and p.key not in top]
        declaration = sites.lines[path][resource.line - 1]
        if not inner or f"@{resource.api_version}'" not in declaration:
            continue
        file, indent = sites.relative(path), re.match(r"\s*", sites.lines[path][prop.line - 1])
        pad = indent.group() if indent else ""
        yield Mutation(
            "unknown property",
            file,
            prop.line + 1,
            "",
            f"{pad}  aksfwSelfTestUnknown: true",
            "unknown property properties.aksfwSelfTestUnknown",
        )
        yield Mutation(
            "property at the wrong level",
            file,
            prop.line,
            "",
            f"{pad}{inner[0]}: null",
            f"unknown property {inner[0]}",
        )
        yield Mutation(
            "unknown API version",
            file,
            resource.line,
            f"@{resource.api_version}'",
            "@2000-01-01'",
            "unknown API version",
        )
        return


def _values(sites: _Sites) -> Iterator[Mutation]:
    found = list(sites.properties())
    yield _first(
        (
            Mutation(
                "wrong enum value",
                sites.relative(path),
                prop.line,
                f"'{prop.value.value}'",
                f"'{prop.value.value}Typo'",
                "is not one of",
            )
            for path, _, _, prop, field in found
            if field
            and field.enum
            and isinstance(prop.value, Literal)
            and isinstance(prop.value.value, str)
            and prop.value.line == prop.line
        ),
        "wrong enum value",
    )
    yield _first(
        (
            Mutation(
                "scalar of the wrong type",
                sites.relative(path),
                prop.line,
                f": {_literal_text(prop.value.value)}",
                ": 'yes'",
                "expected a bool, got 'yes'",
            )
            for path, _, _, prop, field in found
            if field
            and field.type == "bool"
            and isinstance(prop.value, Literal)
            and isinstance(prop.value.value, bool)
        ),
        "scalar of the wrong type",
    )
    yield _first(
        (
            Mutation(
                "missing required property",
                sites.relative(path),
                prop.line,
                None,
                "",
                f"missing required property {prop.key}",
                obj.line,
            )
            for path, _, obj, prop, field in found
            if field and field.required and sites.single_line(path, obj, prop)
        ),
        "missing required property",
    )


def _resolved_keys(sites: _Sites) -> Iterator[Mutation]:
    """A misspelt key in an object the check reaches through a variable, or a conditional."""
    for kind, holders in (
        ("misspelt key in a variable", lambda f: [v.value for v in f.variables.values()]),
        ("misspelt key in a conditional object", _conditionals),
    ):
        yield _first(_renamed_keys(sites, kind, holders), kind)


def _conditionals(file: BicepFile) -> list[Value]:
    resolver = Resolver(file, lambda module, caller: None)
    bodies = [r.body for r in file.resources if r.body is not None and not r.existing]
    return [n for body in bodies for n, _ in resolver.walk(body) if isinstance(n, Conditional)]


def _checked(file: BicepFile) -> set[int]:
    """The objects whose every key the properties check looks up in a model."""
    resolver = Resolver(file, lambda module, caller: None)
    found: set[int] = set()
    for resource in file.resources:
        if resource.existing or resource.body is None:
            continue
        try:
            models, model = models_module(resource.type, resource.api_version)
        except UnknownModel:
            continue
        check = ResourceCheck(resource, models, str(file.path), resolver)
        check.run(model)
        found |= {id(literal) for literal in check.checked}
    return found


def _renamed_keys(
    sites: _Sites, kind: str, holders: Callable[[BicepFile], list[Value]]
) -> Iterator[Mutation]:
    for path in sites.paths:
        file = sites.files[path]
        resolver = Resolver(file, lambda module, caller: None)
        checked = _checked(file)
        for holder in holders(file):
            for node, _ in resolver.walk(holder):
                if not isinstance(node, ObjectLiteral) or id(node) not in checked:
                    continue
                for prop in node.properties:
                    if prop.key and f"{prop.key}:" in sites.lines[path][prop.line - 1]:
                        yield Mutation(
                            kind,
                            sites.relative(path),
                            prop.line,
                            f"{prop.key}:",
                            f"{prop.key}Typo:",
                            f"{prop.key}Typo",
                        )


def _modules(sites: _Sites) -> Iterator[Mutation]:
    calls = list(sites.module_calls())
    yield _first(
        (
            Mutation(
                "module parameter the module does not declare",
                sites.relative(path),
                prop.line,
                f"{prop.key}:",
                f"{prop.key}Typo:",
                f"has no parameter {prop.key}Typo",
            )
            for path, _, _, params, _ in calls
            for prop in params.properties
            if prop.key and f"{prop.key}:" in sites.lines[path][prop.line - 1]
        ),
        "undeclared module parameter",
    )
    yield _first(
        (
            Mutation(
                "module parameter of the wrong type",
                sites.relative(path),
                prop.line,
                sites.lines[path][prop.line - 1].split(":", 1)[1],
                " 42",
                f"parameter {prop.key}: expected a string, got 42",
            )
            for path, _, _, params, target in calls
            for prop in params.properties
            if prop.key in target.params
            and target.params[prop.key].type.base == "string"
            and sites.single_line(path, params, prop)
        ),
        "module parameter of the wrong type",
    )
    yield _first(
        (
            Mutation(
                "required module parameter not passed",
                sites.relative(path),
                prop.line,
                None,
                "",
                f"required parameter {prop.key} of",
                params.line,
            )
            for path, _, _, params, target in calls
            for prop in params.properties
            if prop.key in target.params
            and target.params[prop.key].default is None
            and sites.single_line(path, params, prop)
        ),
        "required module parameter not passed",
    )


def _references(sites: _Sites) -> Iterator[Mutation]:
    accesses = []
    for path in sites.paths:
        file = sites.files[path]
        resolver = Resolver(file, lambda module, caller: None)
        roots = [r.body for r in file.resources if r.body] + [
            o.value for o in file.outputs.values()
        ]
        for root in roots:
            accesses += [(path, file, n) for n, _ in resolver.walk(root) if isinstance(n, Access)]
    yield _first(
        (
            Mutation(
                "reference to an output that does not exist",
                sites.relative(path),
                node.line,
                f".outputs.{node.name}",
                f".outputs.{node.name}Typo",
                f"has no output {node.name}Typo",
            )
            for path, file, node in accesses
            if isinstance(node.target, Access)
            and node.target.name == "outputs"
            and f".outputs.{node.name}" in sites.lines[path][node.line - 1]
        ),
        "missing output",
    )
    yield _first(
        (
            Mutation(
                "reference to a property that does not exist",
                sites.relative(path),
                node.line,
                f".properties.{node.name}",
                f".properties.{node.name}Typo",
                f"no property {node.name}Typo",
            )
            for path, file, node in accesses
            if isinstance(node.target, Access)
            and node.target.name == "properties"
            and isinstance(node.target.target, Reference)
            and file.resource(node.target.target.name) is not None
            and f".properties.{node.name}" in sites.lines[path][node.line - 1]
        ),
        "missing resource property",
    )
    yield _first(
        (
            Mutation(
                "undefined symbol",
                sites.relative(path),
                prop.line,
                f": {prop.value.name}",
                f": {prop.value.name}Typo",
                f"undefined symbol {prop.value.name}Typo",
            )
            for path, _, _, prop, _ in sites.properties()
            if isinstance(prop.value, Reference)
            and prop.value.name in sites.files[path].params
            and f": {prop.value.name}" in sites.lines[path][prop.line - 1]
        ),
        "undefined symbol",
    )


def _scopes_and_defaults(sites: _Sites) -> Iterator[Mutation]:
    yield _first(
        (
            Mutation(
                "role assignment at a scope its module cannot use",
                sites.relative(path),
                scope.line,
                f"scope: {scope.value.name}",
                "scope: resourceGroup('aksfw-self-test')",
                "deploy it with a module",
            )
            for path in sites.paths
            for resource in sites.files[path].resources
            if resource.type == "Microsoft.Authorization/roleAssignments"
            and resource.body
            and (scope := resource.body.get("scope")) is not None
            and isinstance(scope.value, Reference)
        ),
        "role assignment scope",
    )
    yield _first(
        (
            Mutation(
                "parameter default outside its bounds",
                sites.relative(path),
                param.line,
                f"= {param.default.value}",
                f"= {maximum.args[0].value + 1}",
                "above @maxValue",
            )
            for path in sites.paths
            for param in sites.files[path].params.values()
            if (maximum := param.decorator("maxValue"))
            and maximum.args
            and isinstance(maximum.args[0], Literal)
            and isinstance(maximum.args[0].value, int)
            and isinstance(param.default, Literal)
            and isinstance(param.default.value, int)
        ),
        "parameter default outside its bounds",
    )


def mutations(infra: Path) -> list[Mutation]:
    """One mutation per kind of mistake, at sites found in infra/ as it is."""
    sites = _Sites(infra)
    return [
        *_schema(sites),
        *_values(sites),
        *_resolved_keys(sites),
        *_modules(sites),
        *_references(sites),
        *_scopes_and_defaults(sites),
    ]


def run_mutation(
    infra: Path, mutation: Mutation, check: Callable[[Path], list[Problem]]
) -> list[Problem]:
    """The problems check finds in a copy of infra with mutation applied."""
    with tempfile.TemporaryDirectory() as temporary:
        copy = Path(temporary) / infra.name
        shutil.copytree(infra, copy, ignore=shutil.ignore_patterns("schema", "hooks"))
        target = copy / mutation.file
        target.write_text(mutation.apply(target.read_text()))
        return check(copy)


def self_test(infra: Path, check: Callable[[Path], list[Problem]]) -> list[str]:
    """Each mutation, applied to a copy of infra, must fail at its file and line."""
    failures: list[str] = []
    for mutation in mutations(infra):
        problems = run_mutation(infra, mutation, check)
        file = str(Path(infra.name) / mutation.file)
        hits = [
            p
            for p in problems
            if p.file == file and p.line == mutation.where and mutation.expected in p.message
        ]
        status = "fails as it should" if hits else "NOT CAUGHT"
        print(f"self-test: {mutation.kind} at {file}:{mutation.where}: {status}")
        for problem in hits[:1]:
            print(f"    {problem}")
        if not hits:
            failures.append(
                f"{mutation.kind}: expected {file}:{mutation.where}: "
                f"…{mutation.expected}…, got {[str(p) for p in problems]}"
            )
    return failures
