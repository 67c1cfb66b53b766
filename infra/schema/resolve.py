"""What a Bicep value can be, as far as the files say, without deploying anything.

`Resolver.resolve` follows a value to the values it may take (meanings.py): a variable to
its value, a conditional to both branches, `x.key` to that key's value in every object x may
be, a loop variable to every item of what it loops over, a parameter to its declared type
and bounds, a call to what the function returns (`loadJsonContent` to the file's JSON), a
resource to its REST model, a module to its outputs. What is computed at deployment (a
parameter's value, `json(…)`, arithmetic) becomes a `Known`: only its type is known. Nothing
is evaluated beyond that, so the checks built on this report what is certain and pass the
rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from meanings import (
    EMPTY,
    RETURNS,
    SCOPE_OBJECTS,
    Candidate,
    Env,
    Known,
    ModelValue,
    ModuleValue,
    OutputsValue,
    ResourceValue,
    ShapeValue,
    json_value,
    rest_as_bicep,
    type_of,
)
from rest_models import UnknownModel, model_class, models_module, read_shape, shape
from syntax import (
    Access,
    ArrayLiteral,
    BicepFile,
    Call,
    Conditional,
    Expression,
    Index,
    Interpolation,
    Lambda,
    Literal,
    Loop,
    Module,
    ObjectLiteral,
    Operation,
    Param,
    Reference,
    TypeRef,
    Value,
)

_MAX_DEPTH = 40
ReadModule = Callable[[Module, BicepFile], "BicepFile | None"]


def _any(line: int, origin: str = "") -> list[Candidate]:
    return [(Known(line, "any", origin), EMPTY)]


class Resolver:
    """Resolves the values of one Bicep file; read_module reads a module's file."""

    def __init__(self, file: BicepFile, read_module: ReadModule) -> None:
        self.file = file
        self.read_module = read_module

    # --- symbols ------------------------------------------------------------------------

    def param_known(self, param: Param) -> Known:
        """A parameter as a Known: its type, @allowed values and bounds."""
        allowed = param.decorator("allowed")
        values: tuple[Any, ...] = param.type.literals
        if allowed and allowed.args and isinstance(allowed.args[0], ArrayLiteral):
            values = tuple(i.value for i in allowed.args[0].items if isinstance(i, Literal))
        bounds = {
            name: decorator.args[0].value
            for name in ("minValue", "maxValue", "minLength", "maxLength")
            if (decorator := param.decorator(name))
            and decorator.args
            and isinstance(decorator.args[0], Literal)
            and isinstance(decorator.args[0].value, int)
        }
        return Known(param.line, self.base(param.type), f"param {param.name}", values, bounds)

    def base(self, type_: TypeRef, depth: int = 0) -> str:
        """A declared type's base, custom types followed to their declaration."""
        if type_.base.startswith("custom:"):
            alias = self.file.types.get(type_.base.removeprefix("custom:"))
            return self.base(alias, depth + 1) if alias and depth < 10 else "any"
        return type_.base

    def symbol(self, name: str, env: Env, depth: int) -> list[Candidate]:
        file = self.file
        if name in env:
            return list(env[name])
        if name in file.params:
            return [(self.param_known(file.params[name]), EMPTY)]
        if name in file.variables:
            return self.resolve(file.variables[name].value, EMPTY, depth + 1)
        resources = sorted(
            (r for r in file.resources if r.symbol == name), key=lambda r: bool(r.parent)
        )
        if resources:
            return [(ResourceValue(resources[0], resources[0].loop is not None), EMPTY)]
        if name in file.modules:
            module = file.modules[name]
            target = self.read_module(module, file)
            return [(ModuleValue(module, target, module.loop is not None), EMPTY)]
        return []

    # --- values -------------------------------------------------------------------------

    def resolve(self, value: Value, env: Env = EMPTY, depth: int = 0) -> list[Candidate]:
        """Every meaning value may have; [] where it names nothing this file declares."""
        if depth > _MAX_DEPTH:
            return _any(value.line)
        if isinstance(value, Literal | ObjectLiteral | ArrayLiteral | Loop):
            return [(value, env)]
        handler = _EXPRESSIONS.get(type(value))
        return handler(self, value, env, depth) if handler else _any(value.line)

    def _reference(self, value: Reference, env: Env, depth: int) -> list[Candidate]:
        return self.symbol(value.name, env, depth)

    def _access(self, value: Access, env: Env, depth: int) -> list[Candidate]:
        return [
            found
            for candidate in self.resolve(value.target, env, depth + 1)
            for found in self.member(candidate, value, depth)
        ]

    def _index(self, value: Index, env: Env, depth: int) -> list[Candidate]:
        return [
            item
            for candidate in self.resolve(value.target, env, depth + 1)
            for item in self.item(candidate, value.index, depth)
        ]

    def _conditional(self, value: Conditional, env: Env, depth: int) -> list[Candidate]:
        return self.resolve(value.then, env, depth + 1) + self.resolve(
            value.otherwise, env, depth + 1
        )

    def _operation(self, value: Operation, env: Env, depth: int) -> list[Candidate]:
        if value.operator == "??":
            return [c for o in value.operands for c in self.resolve(o, env, depth + 1)]
        arithmetic = value.operator in {"+", "-", "*", "/", "%"}
        return [(Known(value.line, "int" if arithmetic else "bool", value.operator), EMPTY)]

    def _interpolation(self, value: Interpolation, env: Env, depth: int) -> list[Candidate]:
        return [(Known(value.line, "string", "an interpolated string"), EMPTY)]

    def _call(self, call: Call, env: Env, depth: int) -> list[Candidate]:
        name, line = call.name, call.line
        namespaced = isinstance(call.target, Reference) and call.target.name in {"sys", "az"}
        if (call.target is not None and not namespaced) or name in self.file.functions:
            return _any(line, f"{name}()")  # a resource's list*(), a function of the file
        if name in SCOPE_OBJECTS:
            return [(SCOPE_OBJECTS[name], EMPTY)]
        returns = RETURNS.get(name, "any")
        if returns == "json":
            return self.json_file(call)
        if returns == "arguments":
            return [c for a in call.args for c in self.resolve(a, env, depth + 1)]
        if returns == "first":
            firsts = self.resolve(call.args[0], env, depth + 1) if call.args else []
            types = {type_of(m) for m, _ in firsts} - {"null"}
            returns = types.pop() if len(types) == 1 else "any"
            returns = returns if returns in {"string", "array", "object"} else "any"
        return [(Known(line, returns, f"{name}(…)"), EMPTY)]

    def json_file(self, call: Call) -> list[Candidate]:
        """loadJsonContent('file.json'): the file's JSON as values on the call's line."""
        if not (call.args and isinstance(call.args[0], Literal)):
            return _any(call.line)
        path = self.file.path.parent / str(call.args[0].value)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return _any(call.line)
        return [(json_value(data, call.line), EMPTY)]

    # --- members and items --------------------------------------------------------------

    def member(self, candidate: Candidate, access: Access, depth: int) -> list[Candidate]:
        """`candidate.name`: what it holds, [] where it holds no such member."""
        handler = _MEMBERS.get(type(candidate[0]))
        return handler(self, candidate, access, depth) if handler else _any(access.line)

    def _object_member(self, candidate: Candidate, access: Access, depth: int) -> list[Candidate]:
        meaning, env = candidate
        assert isinstance(meaning, ObjectLiteral)
        prop = meaning.get(access.name)
        if prop is not None:
            return self.resolve(prop.value, env, depth + 1)
        return [] if meaning.closed else _any(access.line)

    def _resource_member(self, candidate: Candidate, access: Access, depth: int) -> list[Candidate]:
        resource = candidate[0].resource  # type: ignore[union-attr]
        name, line = access.name, access.line
        if access.nested:
            child = self.file.resource(f"{resource.qualified}__{name}")
            return [(ResourceValue(child), EMPTY)] if child else []
        if name in {"id", "name", "type", "apiVersion"}:
            return [(Known(line, "string", f"{resource.symbol}.{name}"), EMPTY)]
        try:
            tree = read_shape(resource.type, resource.api_version)
            models = models_module(resource.type, resource.api_version)[0]
        except UnknownModel:
            return _any(line)
        return self.model_member(ModelValue(models, tree, resource.symbol), name, line)

    def _module_member(self, candidate: Candidate, access: Access, depth: int) -> list[Candidate]:
        meaning = candidate[0]
        assert isinstance(meaning, ModuleValue)
        if access.name == "outputs" and meaning.file is not None:
            return [(OutputsValue(meaning.module, meaning.file), EMPTY)]
        return [(Known(access.line, "string" if access.name == "name" else "any"), EMPTY)]

    def _output_member(self, candidate: Candidate, access: Access, depth: int) -> list[Candidate]:
        meaning = candidate[0]
        assert isinstance(meaning, OutputsValue)
        output = meaning.file.outputs.get(access.name)
        if output is None:
            return []
        type_ = Resolver(meaning.file, self.read_module).base(output.type)
        origin = f"{meaning.module.symbol}.outputs.{access.name}"
        return [(Known(access.line, type_, origin), EMPTY)]

    def _model_member(self, candidate: Candidate, access: Access, depth: int) -> list[Candidate]:
        meaning = candidate[0]
        assert isinstance(meaning, ModelValue)
        return self.model_member(meaning, access.name, access.line)

    def _shape_member(self, candidate: Candidate, access: Access, depth: int) -> list[Candidate]:
        meaning = candidate[0]
        assert isinstance(meaning, ShapeValue)
        if access.name not in meaning.keys:
            return []
        inner = meaning.keys[access.name]
        return [(inner, EMPTY)] if inner is not None else _any(access.line, access.name)

    def model_member(self, meaning: ModelValue, name: str, line: int) -> list[Candidate]:
        node = meaning.node
        if isinstance(node, str):
            model = model_class(meaning.models, node)
            if model is None:
                return _any(line)
            node = shape(model)[0]
        found = node.get(name)
        if found is None:
            return []
        if isinstance(found, dict):
            return [(ModelValue(meaning.models, found, name), EMPTY)]
        type_ = rest_as_bicep(found, meaning.models)
        if type_ in {"object", "array"}:
            return [(ModelValue(meaning.models, found.type, name), EMPTY)]
        return [(Known(line, type_, name), EMPTY)]

    def item(self, candidate: Candidate, index: Value, depth: int) -> list[Candidate]:
        """`candidate[index]`."""
        meaning, env = candidate
        key = index.value if isinstance(index, Literal) else None
        values: tuple[Value, ...] = ()
        if isinstance(meaning, ArrayLiteral):
            fits = isinstance(key, int) and 0 <= key < len(meaning.items)
            values = (meaning.items[key],) if fits else meaning.items  # type: ignore[index]
        elif isinstance(meaning, ObjectLiteral):
            props = [p for p in meaning.properties if not isinstance(key, str) or p.key == key]
            values = tuple(p.value for p in props)
        elif isinstance(meaning, Loop):
            return self.loop_items(meaning, env, depth)
        else:
            return self.one_of(meaning, index.line)
        return [c for v in values for c in self.resolve(v, env, depth + 1)]

    def one_of(self, meaning: Any, line: int) -> list[Candidate]:
        """An item of a resource or module collection, or of a model's array or map."""
        if isinstance(meaning, ResourceValue):
            return [(ResourceValue(meaning.resource), EMPTY)]
        if isinstance(meaning, ModuleValue):
            return [(ModuleValue(meaning.module, meaning.file), EMPTY)]
        if isinstance(meaning, ModelValue) and isinstance(meaning.node, str):
            inner = meaning.node[1:-1] if meaning.node[:1] in {"[", "{"} else meaning.node
            return [(ModelValue(meaning.models, inner, meaning.label), EMPTY)]
        return _any(line)

    # --- loops and walks ----------------------------------------------------------------

    def loop_items(self, loop: Loop, env: Env, depth: int = 0) -> list[Candidate]:
        """What each item of a `for` expression may be."""
        return self.resolve(loop.body, self.bind(loop, env, depth), depth + 1)

    def bind(self, loop: Loop, env: Env, depth: int = 0) -> Env:
        """env with the loop's variables: the item of its source, and its index."""
        if not loop.variables:
            return env
        items = self.elements(loop.source, env, depth) if loop.source is not None else []
        bound: dict[str, tuple[Candidate, ...]] = dict(env)
        bound[loop.variables[0]] = tuple(items) or tuple(_any(loop.line))
        for name in loop.variables[1:]:
            bound[name] = ((Known(loop.line, "int", "the loop index"), EMPTY),)
        return bound

    def elements(self, source: Value, env: Env, depth: int = 0) -> list[Candidate]:
        """What each element of an array value may be."""
        if isinstance(source, Call) and source.target is None and source.name in {"range", "items"}:
            type_ = "int" if source.name == "range" else "object"
            return [(Known(source.line, type_, f"{source.name}(…)"), EMPTY)]
        found: list[Candidate] = []
        for meaning, inner in self.resolve(source, env, depth + 1):
            if isinstance(meaning, ArrayLiteral):
                found += [c for item in meaning.items for c in self.resolve(item, inner, depth + 1)]
            elif isinstance(meaning, Loop):
                found += self.loop_items(meaning, inner, depth + 1)
            else:
                found += self.one_of(meaning, source.line)
        return found

    def walk(self, value: Value, env: Env = EMPTY) -> Iterator[tuple[Value, Env]]:
        """Every node of value with the variables in force there (loop items, lambda
        parameters), value first."""
        yield value, env
        if isinstance(value, Loop):
            if value.source is not None:
                yield from self.walk(value.source, env)
            inner = self.bind(value, env)
            if value.condition is not None:
                yield from self.walk(value.condition, inner)
            yield from self.walk(value.body, inner)
        elif isinstance(value, Lambda):
            unknown = tuple(_any(value.line, "a lambda parameter"))
            yield from self.walk(value.body, {**env, **dict.fromkeys(value.parameters, unknown)})
        else:
            for child in children(value):
                yield from self.walk(child, env)


_EXPRESSIONS: dict[type, Callable[[Resolver, Any, Env, int], list[Candidate]]] = {
    Reference: Resolver._reference,
    Access: Resolver._access,
    Index: Resolver._index,
    Call: Resolver._call,
    Conditional: Resolver._conditional,
    Operation: Resolver._operation,
    Interpolation: Resolver._interpolation,
}
_MEMBERS: dict[type, Callable[[Resolver, Candidate, Access, int], list[Candidate]]] = {
    ObjectLiteral: Resolver._object_member,
    ResourceValue: Resolver._resource_member,
    ModuleValue: Resolver._module_member,
    OutputsValue: Resolver._output_member,
    ModelValue: Resolver._model_member,
    ShapeValue: Resolver._shape_member,
}


def children(value: Value) -> tuple[Value, ...]:
    """The values directly inside value (a loop's and a lambda's are bound: see walk)."""
    if isinstance(value, ObjectLiteral):
        return tuple(p.value for p in value.properties)
    if isinstance(value, ArrayLiteral):
        return value.items
    parts: dict[type, Callable[[Any], tuple[Value | None, ...]]] = {
        Access: lambda v: (v.target,),
        Index: lambda v: (v.target, v.index),
        Call: lambda v: (v.target, *v.args),
        Operation: lambda v: v.operands,
        Conditional: lambda v: (v.condition, v.then, v.otherwise),
        Interpolation: lambda v: v.parts,
    }
    found = parts.get(type(value), lambda v: ())(value) if isinstance(value, Expression) else ()
    return tuple(v for v in found if v is not None)
