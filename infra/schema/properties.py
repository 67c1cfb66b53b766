"""A resource's body against the REST model of its type@version (rest_models.py), at every
level of nesting: each key must be a property of the model at that level and not read-only,
each value of the shape the model says (object, array, scalar), scalars of the right type
and enum (values.py), and every property a request must give there.

Values are followed where the file says what they are (resolve.py): a variable, both
branches of a conditional, the items a loop variable runs over, so a misspelt key in a
variable's object is found where the variable is used. Free-form objects ({str}, object)
are not looked into.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from meanings import EMPTY, Candidate, Env, Known, describe, type_of
from problems import Problem
from resolve import Resolver
from rest_models import Field, Shape, UnknownModel, discriminator, model_class, models_module
from rest_models import shape as model_shape
from syntax import ArrayLiteral, Literal, Loop, ObjectLiteral, Property, Resource, Value
from values import Slot, missing_required, scalar_problems

# Keys of a resource body that Bicep itself takes (`name` is read-only in the models: it is
# the URL's last segment, which Bicep fills in from it).
BICEP_KEYWORDS = frozenset({"name", "parent", "scope", "dependsOn"})

# (resource type, property path) -> why a property the SDK model lacks or marks read-only is
# right. Paths use [*] for array items and {*} for map values.
ALLOWED: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Level:
    """One level of a model an object is checked against: its properties, the ones a request
    must give, whether it takes other keys too, its path, and whether it is a resource body."""

    tree: Shape
    required: Shape
    open_: bool
    path: str
    top: bool = False


def _hint(tree: Shape, key: str) -> str:
    """Where an unknown key may have been meant: another spelling, or one level down."""
    near = [known for known in tree if known.lower() == key.lower()]
    if near:
        return f" (did you mean {near[0]}?)"
    below = [parent for parent, node in tree.items() if isinstance(node, dict) and key in node]
    return f" (it belongs in {below[0]})" if below else ""


class ResourceCheck:
    """The problems of one resource's body against its model."""

    def __init__(
        self, resource: Resource, module: ModuleType, file: str, resolver: Resolver
    ) -> None:
        self.resource = resource
        self.module = module
        self.file = file
        self.resolver = resolver
        self.label = f"{resource.type}@{resource.api_version}"
        self.problems: list[Problem] = []
        self.seen: set[tuple[int, str]] = set()
        self.visiting: set[tuple[int, str]] = set()
        self.checked: list[ObjectLiteral] = []  # the objects whose every key was checked

    def problem(self, line: int, message: str) -> None:
        if (line, message) not in self.seen:
            self.seen.add((line, message))
            self.problems.append(Problem(self.file, line, self.label, message))

    def allowed(self, path: str) -> bool:
        return (self.resource.type, path) in ALLOWED

    def run(self, model: type[Any]) -> list[Problem]:
        body = self.resource.body
        if body is None:
            return []
        if body.closed and body.get("name") is None:
            self.problem(body.line, "missing required property name")
        env = self.resolver.bind(self.resource.loop, EMPTY) if self.resource.loop else EMPTY
        self.model(body, model, "", env, top=True)
        return self.problems

    def model(
        self, literal: ObjectLiteral, model: type[Any], path: str, env: Env, top: bool = False
    ) -> None:
        key = (id(literal), path)
        if key in self.visiting:  # the same variable reached twice on one path
            return
        self.visiting.add(key)
        tree: Shape = {}
        open_ = False
        candidates = self.candidates(literal, model, env, path)
        for candidate in candidates:
            candidate_tree, candidate_open = model_shape(candidate)
            tree = {**candidate_tree, **tree}
            open_ = open_ or candidate_open
        # A subclass's required properties count only when the discriminator picks it.
        required = model_shape(candidates[0] if len(candidates) == 1 else model)[0]
        self.tree(literal, Level(tree, required, open_, path, top), env)
        self.visiting.discard(key)

    def candidates(
        self, literal: ObjectLiteral, model: type[Any], env: Env, path: str
    ) -> list[type[Any]]:
        """The model's subclass that literal's discriminator picks; the base class and all its
        subclasses when the discriminator is not a literal string."""
        found = discriminator(model)
        if found is None:
            return [model]
        key, classes = found
        prop = literal.get(key)
        values = self.resolver.resolve(prop.value, env) if prop else []
        given = [m for m, _ in values if isinstance(m, Literal)]
        if len(given) != 1 or len(values) != 1 or not isinstance(given[0].value, str):
            subclasses = (getattr(self.module, name, None) for name in classes.values())
            return [model, *(c for c in subclasses if isinstance(c, type))]
        value = given[0].value
        if value not in classes and value.lower() not in {c.lower() for c in classes}:
            near = difflib.get_close_matches(value, list(classes), n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            where = f"{path}.{key}" if path else key
            self.problem(
                given[0].line, f"{where}: {value!r} is not one of {len(classes)} known kinds{hint}"
            )
            return [model]
        subclass = getattr(self.module, classes.get(value, ""), None)
        if not isinstance(subclass, type) or subclass is model:
            return [model]
        return self.candidates(literal, subclass, env, path)

    def tree(self, literal: ObjectLiteral, level: Level, env: Env) -> None:
        if not level.open_:
            self.checked.append(literal)
        for prop in literal.properties:
            if prop.key is not None and not (level.top and prop.key in BICEP_KEYWORDS):
                self.key(prop, level, env)
        for missing in missing_required(literal, level.required, level.path):
            if not self.allowed(missing):
                self.problem(literal.line, f"missing required property {missing}")

    def key(self, prop: Property, level: Level, env: Env) -> None:
        """One property of an object against the model's level it is at."""
        assert prop.key is not None
        where = f"{level.path}.{prop.key}" if level.path else prop.key
        node = level.tree.get(prop.key)
        if node is None:
            if not level.open_ and not self.allowed(where):
                self.problem(prop.line, f"unknown property {where}{_hint(level.tree, prop.key)}")
        elif isinstance(node, Field):
            if node.read_only and not self.allowed(where):
                self.problem(prop.line, f"read-only property {where}")
            else:
                self.value(prop.value, node, where, env, prop.line)
        else:
            below = level.required.get(prop.key)
            inner_level = Level(node, below if isinstance(below, dict) else {}, False, where)
            for meaning, inner in self.meanings(prop.value, env):
                if isinstance(meaning, ObjectLiteral):
                    self.tree(meaning, inner_level, inner)
                elif not (isinstance(meaning, Literal) and meaning.value is None):
                    self.mismatch(meaning, where, "an object", prop.line)

    def meanings(self, value: Value, env: Env) -> list[Candidate]:
        """What a value may be: itself when written out, else what it resolves to."""
        if isinstance(value, ObjectLiteral | ArrayLiteral | Loop | Literal):
            return [(value, env)]
        return self.resolver.resolve(value, env)

    def value(self, value: Value, field: Field, path: str, env: Env, line: int) -> None:
        """Check value against a property of the model: a scalar, [item], {item}, object or a
        class name."""
        type_name = field.type
        if type_name == "object":
            return
        for meaning, inner in self.meanings(value, env):
            if isinstance(meaning, Literal) and meaning.value is None:
                continue
            if type_name.startswith("["):
                self.array(meaning, inner, _item(field, type_name), path, line)
            elif type_name.startswith("{"):
                self.map(meaning, inner, _item(field, type_name), path, line)
            elif (model := model_class(self.module, type_name)) is not None:
                if isinstance(meaning, ObjectLiteral):
                    self.model(meaning, model, path, inner)
                else:
                    self.mismatch(meaning, path, f"an object ({type_name})", line)
            elif isinstance(meaning, ObjectLiteral | ArrayLiteral | Loop):
                self.mismatch(meaning, path, f"a scalar ({type_name})", line)
            else:
                slot = Slot(field, self.module, path, line, self.resource.type)
                for where, message in scalar_problems(meaning, slot):
                    if not self.allowed(path):
                        self.problem(where, message)

    def array(self, meaning: Any, env: Env, item: Field, path: str, line: int) -> None:
        if isinstance(meaning, ArrayLiteral):
            for element in meaning.items:
                self.value(element, item, f"{path}[*]", env, element.line)
        elif isinstance(meaning, Loop):
            inner = self.resolver.bind(meaning, env)
            self.value(meaning.body, item, f"{path}[*]", inner, meaning.body.line)
        else:
            self.mismatch(meaning, path, "an array", line)

    def map(self, meaning: Any, env: Env, item: Field, path: str, line: int) -> None:
        """An object whose values are all of one type ({str}: each a string)."""
        if not isinstance(meaning, ObjectLiteral):
            self.mismatch(meaning, path, "an object", line)
            return
        for prop in meaning.properties:
            if prop.key is not None:
                self.value(prop.value, item, f"{path}.{{*}}", env, prop.line)

    def mismatch(self, meaning: Any, path: str, expected: str, line: int) -> None:
        """A problem when a value is known to be of another shape; unknown ones pass."""
        got = type_of(meaning)
        kind = {"object": "an object", "array": "an array"}.get(got, "a scalar")
        if got in {"any", "null", "resource", "module"} or expected.startswith(kind):
            return
        if self.allowed(path):
            return
        written = isinstance(meaning, ObjectLiteral | ArrayLiteral | Loop | Literal)
        where = meaning.line if written else line
        shown = describe(meaning) if isinstance(meaning, Known | Literal) else kind
        self.problem(where, f"{path}: expected {expected}, got {shown}")


def _item(field: Field, type_name: str) -> Field:
    """The field of one item of an array or map property (its enum and bounds included)."""
    return Field(type_name[1:-1], False, False, field.enum, field.bounds)


def check_resource(resource: Resource, file: str, resolver: Resolver) -> list[Problem]:
    label = f"{resource.type}@{resource.api_version}"
    try:
        module, model = models_module(resource.type, resource.api_version)
    except UnknownModel as error:
        return [Problem(file, resource.line, label, str(error))]
    if resource.existing or resource.body is None:
        return []
    return ResourceCheck(resource, module, file, resolver).run(model)
