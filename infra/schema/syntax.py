"""What a Bicep file is, as infra/schema/ reads it: its declarations (parameters, variables,
resources, modules, outputs, functions) and their values as a tree with the line of every
node. bicep.py builds it; the checks read it. Nothing here evaluates anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# --- values ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    """A string without interpolation, a number, true, false or null."""

    line: int
    value: str | int | bool | None


@dataclass(frozen=True)
class Property:
    line: int
    key: str | None  # None: an interpolated key or a spread (`...x`), known only at deployment
    value: Value


@dataclass(frozen=True)
class ObjectLiteral:
    line: int
    properties: tuple[Property, ...]

    def get(self, key: str) -> Property | None:
        return next((p for p in self.properties if p.key == key), None)

    @property
    def closed(self) -> bool:
        """Whether every key is known here (no interpolated key, no spread)."""
        return all(p.key is not None for p in self.properties)


@dataclass(frozen=True)
class ArrayLiteral:
    line: int
    items: tuple[Value, ...]


@dataclass(frozen=True)
class Loop:
    """`[for item in source: body]` or `[for (item, i) in source: if (condition) body]`."""

    line: int
    body: Value
    variables: tuple[str, ...] = ()
    source: Value | None = None
    condition: Value | None = None


@dataclass(frozen=True)
class Expression:
    """Anything computed: the subclasses say what (resolve.py follows them)."""

    line: int


@dataclass(frozen=True)
class Reference(Expression):
    name: str


@dataclass(frozen=True)
class Access(Expression):
    """`target.name`; safe for `target.?name`, nested for `target::name`."""

    target: Value
    name: str
    safe: bool = False
    nested: bool = False


@dataclass(frozen=True)
class Index(Expression):
    target: Value
    index: Value
    safe: bool = False


@dataclass(frozen=True)
class Call(Expression):
    """`name(args)`; target: the namespace or object before a dot (`sys.`, `az.`, `res.`)."""

    name: str
    args: tuple[Value, ...]
    target: Value | None = None


@dataclass(frozen=True)
class Operation(Expression):
    """A unary or binary operator (`!`, `-`, `&&`, `==`, `+`, `??`, …)."""

    operator: str
    operands: tuple[Value, ...]


@dataclass(frozen=True)
class Conditional(Expression):
    condition: Value
    then: Value
    otherwise: Value


@dataclass(frozen=True)
class Interpolation(Expression):
    """A string with `${…}`: the expressions it holds."""

    parts: tuple[Value, ...]


@dataclass(frozen=True)
class Lambda(Expression):
    parameters: tuple[str, ...]
    body: Value


Value = Literal | ObjectLiteral | ArrayLiteral | Loop | Expression


# --- declarations ---------------------------------------------------------------------


@dataclass(frozen=True)
class TypeRef:
    """A declared type: base is string, int, bool, object, array, any or resource (a custom type
    is resolved to its base when the file declares it, otherwise any)."""

    line: int
    base: str
    nullable: bool = False
    literals: tuple[str | int | bool, ...] = ()  # a union of literal types: 'a' | 'b'


@dataclass(frozen=True)
class Decorator:
    line: int
    name: str
    args: tuple[Value, ...]


@dataclass(frozen=True)
class Param:
    line: int
    name: str
    type: TypeRef
    default: Value | None
    decorators: tuple[Decorator, ...] = ()

    def decorator(self, name: str) -> Decorator | None:
        return next((d for d in self.decorators if d.name == name), None)


@dataclass(frozen=True)
class Variable:
    line: int
    name: str
    value: Value


@dataclass(frozen=True)
class Output:
    line: int
    name: str
    type: TypeRef
    value: Value


@dataclass(frozen=True)
class Resource:
    file: Path
    line: int
    symbol: str
    type: str  # full type, e.g. Microsoft.Storage/storageAccounts/blobServices
    api_version: str
    existing: bool
    body: ObjectLiteral | None  # None when the body is not an object literal
    qualified: str  # parent__child for a resource declared in another's body (as pycep names it)
    condition: Value | None = None
    loop: Loop | None = None
    parent: str | None = None  # the qualified name of the resource whose body declares it


@dataclass(frozen=True)
class Module:
    line: int
    symbol: str
    path: str  # as written: a relative file, or a registry reference
    body: ObjectLiteral | None
    condition: Value | None = None
    loop: Loop | None = None


@dataclass(frozen=True)
class Function:
    line: int
    name: str
    parameters: tuple[str, ...]
    body: Value


@dataclass
class BicepFile:
    path: Path
    target_scope: str = "resourceGroup"
    target_scope_line: int = 0
    params: dict[str, Param] = field(default_factory=dict)
    variables: dict[str, Variable] = field(default_factory=dict)
    resources: list[Resource] = field(default_factory=list)
    modules: dict[str, Module] = field(default_factory=dict)
    outputs: dict[str, Output] = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)
    types: dict[str, TypeRef] = field(default_factory=dict)
    imports: set[str] = field(default_factory=set)
    metadata: list[Value] = field(default_factory=list)
    duplicates: list[tuple[int, str]] = field(default_factory=list)  # (line, symbol)

    def resource(self, symbol: str) -> Resource | None:
        """The resource of that qualified name (a top-level one's is its symbol)."""
        return next((r for r in self.resources if r.qualified == symbol), None)
