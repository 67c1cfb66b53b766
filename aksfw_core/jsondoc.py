"""Reading JSON from outside (files, messages, HTTP bodies, stored state) as bad input when
it is not JSON: invalid text, invalid UTF-8, nesting deep enough to exhaust the parser's
recursion, or an object holding one key twice (parsers disagree on which value wins, so
`{"dryRun": true, "dryRun": false}` could pass a check on the first and act on the last).
Pure code.
"""

from __future__ import annotations

import json
from typing import Any

from aksfw_core.errors import InputError


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return document


def load_json(text: str | bytes, what: str) -> Any:
    """Parse `text`.

    Raises:
        InputError: naming `what` and why it is not JSON (a key given twice included).
    """
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as error:
        raise InputError(f"{what} has the key {error.key[:80]!r} twice") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{what} is not JSON: {error.msg} at line {error.lineno}") from None
    except UnicodeDecodeError:
        raise InputError(f"{what} is not UTF-8 text") from None
    except RecursionError:
        raise InputError(f"{what} is nested too deeply") from None
