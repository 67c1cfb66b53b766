"""What a Bicep compiler would refuse, checked from the parsed files (none can run here):

- every name used is declared (parameter, variable, resource, module, function, loop or
  lambda variable, import) and every function called exists;
- every member used exists: a key of an object the file writes out (a variable, a loop's
  items, loadJsonContent's JSON), a property of a resource in its REST model, an output of
  a module, a key of environment(), subscription() and the other scope functions;
- each module call passes only parameters the module declares, every one it requires, each
  of the declared type and within the module's @allowed, @minValue/@maxValue and
  @minLength/@maxLength; and deploys at the scope the module's targetScope names;
- a resource is deployed at a scope its type allows (the SDK's PUT URLs say which), and an
  extension resource (a role assignment, diagnostic settings) is scoped to a resource this
  file can deploy to: not a resource group (that needs a module), nor a resource declared
  in another scope;
- a parameter's default is of its type and within its own bounds; an output's value is of
  its declared type.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping

from meanings import (
    DECORATORS,
    RETURNS,
    Candidate,
    Env,
    Known,
    Meaning,
    ModelValue,
    OutputsValue,
    ResourceValue,
    ShapeValue,
    describe,
    type_of,
)
from problems import Problem
from resolve import Resolver
from rest_models import UnknownModel, deploy_scopes
from syntax import (
    Access,
    ArrayLiteral,
    BicepFile,
    Call,
    Index,
    Literal,
    Module,
    ObjectLiteral,
    Param,
    Reference,
    Resource,
    Value,
)

_SCOPE_FUNCTIONS = {"resourceGroup", "subscription", "managementGroup", "tenant"}


def text_of(value: Value) -> str:
    """A short rendering of a reference chain for messages: `monitoring.outputs`."""
    if isinstance(value, Reference):
        return value.name
    if isinstance(value, Access):
        return f"{text_of(value.target)}{'::' if value.nested else '.'}{value.name}"
    if isinstance(value, Index):
        return f"{text_of(value.target)}[…]"
    if isinstance(value, Call):
        prefix = f"{text_of(value.target)}." if value.target is not None else ""
        return f"{prefix}{value.name}(…)"
    return "the value"


def _near(name: str, known: Iterable[str]) -> str:
    found = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {found[0]!r}?)" if found else ""


class FileSemantics:
    """The problems of one file's names, members, modules, scopes and defaults."""

    def __init__(self, file: BicepFile, label: str, resolver: Resolver) -> None:
        self.file = file
        self.label = label
        self.resolver = resolver
        self.problems: list[Problem] = []
        self.seen: set[tuple[int, str]] = set()
        self.symbols = (
            set(file.params)
            | set(file.variables)
            | {r.symbol for r in file.resources}
            | set(file.modules)
            | file.imports
            | {"sys", "az"}
        )

    def problem(self, line: int, what: str, message: str) -> None:
        if (line, message) not in self.seen:
            self.seen.add((line, message))
            self.problems.append(Problem(self.label, line, what, message))

    def run(self) -> list[Problem]:
        for line, name in self.file.duplicates:
            self.problem(line, name, f"{name} is declared twice")
        for value, env in self.values():
            self.names(value, env)
        for module in self.file.modules.values():
            ModuleCall(self, module).run()
        for resource in self.file.resources:
            self.resource_scope(resource)
        for param in self.file.params.values():
            self.param(param)
        for output in self.file.outputs.values():
            for meaning, _ in self.resolver.resolve(output.value):
                self.assignable(
                    meaning,
                    self.resolver.base(output.type),
                    output.type.nullable,
                    output.line,
                    f"output {output.name}",
                )
        return self.problems

    # --- every value, and the names in it -----------------------------------------------

    def values(self) -> Iterator[tuple[Value, Env]]:
        file, walk = self.file, self.resolver.walk
        roots: list[tuple[Value, Env]] = []
        for param in file.params.values():
            roots += [(param.default, {})] if param.default is not None else []
            roots += [(arg, {}) for d in param.decorators for arg in d.args]
        roots += [(v.value, {}) for v in file.variables.values()]
        roots += [(o.value, {}) for o in file.outputs.values()]
        roots += [(m, {}) for m in file.metadata]
        for function in file.functions.values():
            unknown: tuple[Candidate, ...] = ((Known(function.line, "any", "a parameter"), {}),)
            roots.append((function.body, dict.fromkeys(function.parameters, unknown)))
        declarations: list[Resource | Module] = [*file.resources, *file.modules.values()]
        for declaration in declarations:
            env = self.resolver.bind(declaration.loop, {}) if declaration.loop else {}
            if declaration.loop is not None and declaration.loop.source is not None:
                roots.append((declaration.loop.source, {}))
            if declaration.condition is not None:
                roots.append((declaration.condition, env))
            if declaration.body is not None:
                roots.append((declaration.body, env))
        for root, env in roots:
            yield from walk(root, env)

    def names(self, value: Value, env: Env) -> None:
        if isinstance(value, Reference):
            self.reference(value, env)
        elif isinstance(value, Call):
            self.call(value)
        elif isinstance(value, Access) and not value.safe:
            self.member(value, env)

    def reference(self, value: Reference, env: Env) -> None:
        if value.name in env or value.name in self.symbols:
            return
        known = self.symbols | set(env)
        self.problem(
            value.line, "reference", f"undefined symbol {value.name}{_near(value.name, known)}"
        )

    def call(self, call: Call) -> None:
        namespaced = isinstance(call.target, Reference) and call.target.name in {"sys", "az"}
        if call.target is not None and not namespaced:
            return  # a resource's function (listKeys, …)
        known = set(RETURNS) | set(self.file.functions) | self.file.imports
        if call.name not in known:
            self.problem(
                call.line, "reference", f"unknown function {call.name}{_near(call.name, known)}"
            )
        if (
            call.name == "resourceGroup"
            and not call.args
            and self.file.target_scope != "resourceGroup"
        ):
            self.problem(
                call.line,
                "reference",
                f"resourceGroup() without a name in a {self.file.target_scope}-scope file",
            )

    def member(self, access: Access, env: Env) -> None:
        """`target.name` where target is known to have no such member."""
        for candidate in self.resolver.resolve(access.target, env):
            meaning = candidate[0]
            if self.resolver.member(candidate, access, 0):
                continue
            name = access.name
            target = text_of(access.target)
            if isinstance(meaning, ObjectLiteral):
                keys = [p.key for p in meaning.properties if p.key]
                message = f"{target} has no property {name}{_near(name, keys)}"
            elif isinstance(meaning, ResourceValue):
                resource = meaning.resource
                kind = "nested resource" if access.nested else "property"
                message = f"{target} ({resource.type}@{resource.api_version}) has no {kind} {name}"
            elif isinstance(meaning, OutputsValue):
                outputs = list(meaning.file.outputs)
                message = (
                    f"module {meaning.module.symbol} ({meaning.module.path}) has no output "
                    f"{name}{_near(name, outputs)}"
                )
            elif isinstance(meaning, ModelValue | ShapeValue):
                message = f"{target} has no property {name}"
            else:
                continue
            self.problem(access.line, "reference", message)
            return

    # --- scopes -------------------------------------------------------------------------

    def resource_scope(self, resource: Resource) -> None:
        body = resource.body
        scope = body.get("scope") if body is not None else None
        if resource.existing or body is None:
            return
        what = f"{resource.type}@{resource.api_version}"
        try:
            scopes = deploy_scopes(resource.type, resource.api_version)
        except UnknownModel:
            return
        own = self.file.target_scope
        if scope is None:
            if resource.parent is None and "extension" not in scopes and own not in scopes:
                allowed = ", ".join(sorted(scopes))
                self.problem(
                    resource.line,
                    what,
                    f"cannot be deployed at {own} scope (only {allowed}): use a module",
                )
            return
        value = scope.value
        if isinstance(value, Call) and value.target is None and value.name in _SCOPE_FUNCTIONS:
            if value.args or value.name != own:
                self.problem(
                    scope.line,
                    what,
                    f"scope {text_of(value)} is not this file's {own} scope: "
                    "deploy it with a module",
                )
            return
        if "extension" not in scopes:
            self.problem(scope.line, what, "only extension resources take a scope: use a module")
            return
        targets = [m for m, _ in self.resolver.resolve(value) if isinstance(m, ResourceValue)]
        if not targets:
            self.problem(scope.line, what, f"scope {text_of(value)} is not a resource of this file")
        for target in targets:
            self.extension_target(target.resource, scope.line, what, text_of(value))

    def extension_target(self, target: Resource, line: int, what: str, name: str) -> None:
        if target.type.lower() == "microsoft.resources/resourcegroups":
            self.problem(
                line,
                what,
                f"scope {name} is a resource group: deploy it with a module scoped to the group",
            )
            return
        for ancestor in self.ancestors(target):
            elsewhere = ancestor.body.get("scope") if ancestor.body is not None else None
            if elsewhere is not None and not _own_scope(elsewhere.value, self.file.target_scope):
                self.problem(
                    line,
                    what,
                    f"scope {name} is declared in another scope ({text_of(elsewhere.value)}): "
                    "deploy it with a module at that scope",
                )
                return

    def ancestors(self, resource: Resource) -> Iterator[Resource]:
        """resource, its parent, the parent's parent, …"""
        current: Resource | None = resource
        seen: set[str] = set()
        while current is not None and current.qualified not in seen:
            seen.add(current.qualified)
            yield current
            if current.parent is not None:
                current = self.file.resource(current.parent)
                continue
            parent = current.body.get("parent") if current.body is not None else None
            found = self.resolver.resolve(parent.value) if parent is not None else []
            current = next((m.resource for m, _ in found if isinstance(m, ResourceValue)), None)

    # --- parameters and outputs ---------------------------------------------------------

    def param(self, param: Param) -> None:
        where = f"param {param.name}"
        known = DECORATORS | set(self.file.functions) | self.file.imports
        for decorator in param.decorators:
            if decorator.name not in known:
                near = _near(decorator.name, known)
                self.problem(decorator.line, where, f"unknown decorator @{decorator.name}{near}")
        low, high = _bound(param, "minValue"), _bound(param, "maxValue")
        if low is not None and high is not None and low > high:
            self.problem(param.line, where, f"@minValue({low}) > @maxValue({high})")
        if param.default is None:
            return
        base = self.resolver.base(param.type)
        for meaning, _ in self.resolver.resolve(param.default):
            line = meaning.line if isinstance(meaning, Literal | ArrayLiteral) else param.line
            self.assignable(meaning, base, param.type.nullable, line, f"the default of {where}")
            for message in bound_problems(meaning, param, self.resolver):
                self.problem(line, where, f"the default {message}")

    def assignable(
        self, meaning: Meaning, expected: str, nullable: bool, line: int, what: str
    ) -> None:
        got = type_of(meaning)
        if not _mismatch(expected, got):
            return
        if got == "null":
            if not nullable:
                self.problem(line, what, f"null, but the type is {expected}")
            return
        self.problem(line, what, f"expected {_a(expected)}, got {describe(meaning)}")


def _mismatch(expected: str, got: str) -> bool:
    """Whether a value of type got cannot be given where expected is declared (a resource
    passes as an object)."""
    if expected in {"any", "resource"} or got in {"any", expected}:
        return False
    return not (expected == "object" and got == "resource")


def _own_scope(value: Value, own: str) -> bool:
    return isinstance(value, Call) and value.name == own and not value.args and value.target is None


def _bound(param: Param, name: str) -> int | None:
    decorator = param.decorator(name)
    if decorator and decorator.args and isinstance(decorator.args[0], Literal):
        value = decorator.args[0].value
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    return None


def _a(type_: str) -> str:
    return f"an {type_}" if type_[0] in "aeiou" else f"a {type_}"


def bound_problems(meaning: Meaning, param: Param, resolver: Resolver) -> list[str]:
    """How a value falls outside a parameter's @allowed, @minValue/@maxValue and
    @minLength/@maxLength (for a parameter passed on: how its own bounds exceed them)."""
    target = resolver.param_known(param)
    allowed, bounds = target.allowed, target.bounds
    problems: list[str] = []
    if isinstance(meaning, Literal) and meaning.value is not None:
        value = meaning.value
        if allowed and value not in allowed:
            problems.append(f"{describe(meaning)} is not @allowed ({_listed(allowed)})")
        problems += _range(value, bounds, describe(meaning))
    elif isinstance(meaning, ArrayLiteral):
        for item in meaning.items:
            if allowed and isinstance(item, Literal) and item.value not in allowed:
                problems.append(f"{describe(item)} is not @allowed ({_listed(allowed)})")
        problems += _length(len(meaning.items), bounds, "its length")
    elif isinstance(meaning, Known):
        outside = [v for v in meaning.allowed if allowed and v not in allowed]
        if outside:
            problems.append(f"{meaning.origin} allows {_listed(outside)}, not @allowed here")
        for name, mine in bounds.items():
            theirs = meaning.bounds.get(name)
            wider = theirs is not None and (
                theirs < mine if name.startswith("min") else theirs > mine
            )
            if wider:
                problems.append(f"{meaning.origin} has @{name}({theirs}), outside @{name}({mine})")
    return problems


def _range(value: object, bounds: Mapping[str, int], shown: str) -> list[str]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        low, high = bounds.get("minValue"), bounds.get("maxValue")
        if low is not None and value < low:
            return [f"{shown} is below @minValue({low})"]
        if high is not None and value > high:
            return [f"{shown} is above @maxValue({high})"]
    if isinstance(value, str):
        return _length(len(value), bounds, shown)
    return []


def _length(length: int, bounds: Mapping[str, int], shown: str) -> list[str]:
    low, high = bounds.get("minLength"), bounds.get("maxLength")
    if low is not None and length < low:
        return [f"{shown} is shorter than @minLength({low})"]
    if high is not None and length > high:
        return [f"{shown} is longer than @maxLength({high})"]
    return []


def _listed(values: tuple[object, ...] | list[object]) -> str:
    return ", ".join(
        describe(Literal(0, v)) if isinstance(v, str | int) else str(v) for v in values
    )


class ModuleCall:
    """One `module` declaration against the module's file."""

    def __init__(self, semantics: FileSemantics, module: Module) -> None:
        self.semantics = semantics
        self.module = module
        self.target = semantics.resolver.read_module(module, semantics.file)
        self.what = f"module {module.symbol}"

    def problem(self, line: int, message: str) -> None:
        self.semantics.problem(line, self.what, message)

    def run(self) -> None:
        if self.target is None or self.module.body is None:
            return
        resolver = self.semantics.resolver
        env = resolver.bind(self.module.loop, {}) if self.module.loop else {}
        self.scope(env)
        given = self.module.body.get("params")
        target = Resolver(self.target, resolver.read_module)
        passed: set[str] = set()
        closed = True
        if given is not None:
            for meaning, inner in resolver.resolve(given.value, env):
                if isinstance(meaning, ObjectLiteral):
                    closed = closed and meaning.closed
                    for prop in meaning.properties:
                        if prop.key is not None:
                            passed.add(prop.key)
                            self.argument(prop.key, prop.line, prop.value, inner, target)
                else:
                    closed = False
        if not closed:
            return
        for name, param in self.target.params.items():
            if param.default is None and not param.type.nullable and name not in passed:
                line = given.line if given is not None else self.module.line
                self.problem(line, f"required parameter {name} of {self.module.path} is not passed")

    def argument(self, name: str, line: int, value: Value, env: Env, target: Resolver) -> None:
        param = self.target.params.get(name) if self.target else None
        if param is None:
            known = list(self.target.params) if self.target else []
            self.problem(line, f"{self.module.path} has no parameter {name}{_near(name, known)}")
            return
        expected = target.base(param.type)
        for meaning, _ in self.semantics.resolver.resolve(value, env):
            where = meaning.line if isinstance(meaning, Literal) else line
            got = type_of(meaning)
            if got != "null" and _mismatch(expected, got):
                self.problem(
                    where, f"parameter {name}: expected {_a(expected)}, got {describe(meaning)}"
                )
            for message in bound_problems(meaning, param, target):
                self.problem(where, f"parameter {name}: {message}")

    def scope(self, env: Env) -> None:
        assert self.target is not None and self.module.body is not None
        given = self.module.body.get("scope")
        caller = self.semantics.file.target_scope
        wanted = self.target.target_scope
        kind: str | None = caller
        line = self.module.line
        if given is not None:
            kind, line = self.scope_kind(given.value, env), given.line
        if kind is not None and kind != wanted:
            how = "without a scope" if given is None else f"at a {kind} scope"
            self.problem(line, f"{self.module.path} targets {wanted} but is deployed {how}")

    def scope_kind(self, value: Value, env: Env) -> str | None:
        if isinstance(value, Call) and value.target is None and value.name in _SCOPE_FUNCTIONS:
            return value.name
        for meaning, _ in self.semantics.resolver.resolve(value, env):
            if isinstance(meaning, ResourceValue):
                if meaning.resource.type.lower() == "microsoft.resources/resourcegroups":
                    return "resourceGroup"
                return "resource"
        return None
