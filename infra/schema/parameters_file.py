"""main.parameters.json against main.bicep: azd passes each entry to the deployment, so each
must be a parameter main.bicep declares, and each value written there (a JSON value, or the
default of an azd `${VARIABLE=default}` substitution) must be of the parameter's type and
within its @allowed, @minValue/@maxValue and @minLength/@maxLength. A substitution without a
default (`${AZURE_LOCATION}`) is known only when azd runs and is not checked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from bicep import read
from problems import Problem
from resolve import Resolver
from semantics import bound_problems
from syntax import Literal, Module
from tokens import BicepSyntaxError

_SUBSTITUTION = re.compile(r"^\$\{(\w+)(?:=(.*))?\}$", re.S)


def check_parameters_file(infra: Path) -> list[Problem]:
    """The problems of infra/main.parameters.json (none when either file is missing)."""
    path, main = infra / "main.parameters.json", infra / "main.bicep"
    if not path.is_file() or not main.is_file():
        return []
    label = str(path.relative_to(infra.parent))
    try:
        text = path.read_text()
        entries = json.loads(text).get("parameters", {})
        bicep = read(main)
    except (ValueError, AttributeError) as error:
        return [Problem(label, 1, "-", f"cannot read: {error}")]
    except BicepSyntaxError:
        return []  # reported with main.bicep
    resolver = Resolver(bicep, lambda module, caller: _no_module(module))
    problems: list[Problem] = []
    for name, entry in entries.items():
        line = _line(text, name)
        param = bicep.params.get(name)
        if param is None:
            problems.append(Problem(label, line, name, "main.bicep has no such parameter"))
            continue
        value = entry.get("value") if isinstance(entry, dict) else None
        literal, message = _written(value, resolver.base(param.type), line)
        if message:
            problems.append(Problem(label, line, name, message))
        if literal is not None:
            problems += [
                Problem(label, line, name, problem)
                for problem in bound_problems(literal, param, resolver)
            ]
    return problems


def _written(value: object, type_: str, line: int) -> tuple[Literal | None, str]:
    """The value the file gives (None when azd supplies it), or why it is not of type_."""
    if isinstance(value, str) and (match := _SUBSTITUTION.match(value)):
        default = match.group(2)
        if default is None or type_ in {"array", "object"}:
            return None, ""  # azd supplies it, or parses it as JSON at deployment
        return _converted(default, type_, line)
    if not (isinstance(value, str | int | bool) or value is None):
        return None, ""
    kind = {bool: "bool", int: "int", str: "string"}.get(type(value))
    if value is not None and type_ in {"string", "int", "bool"} and kind != type_:
        return None, f"{value!r} is not a {type_}"
    return Literal(line, value), ""


def _converted(text: str, type_: str, line: int) -> tuple[Literal | None, str]:
    """A substitution's default as azd converts it to the parameter's type."""
    if type_ == "int":
        digits = text.removeprefix("-")
        if not digits.isdigit():
            return None, f"default {text!r} is not an int"
        return Literal(line, int(text)), ""
    if type_ == "bool":
        if text.lower() not in {"true", "false"}:
            return None, f"default {text!r} is not true or false"
        return Literal(line, text.lower() == "true"), ""
    return Literal(line, text), ""


def _line(text: str, name: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if f'"{name}"' in line:
            return number
    return 1


def _no_module(module: Module) -> None:
    return None
