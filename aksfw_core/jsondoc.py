"""Reading JSON from outside (files, messages, HTTP bodies, stored state) as bad input when
it is not JSON: invalid text, invalid UTF-8, or nesting deep enough to exhaust the
parser's recursion. Pure code.
"""

from __future__ import annotations

import json
from typing import Any

from aksfw_core.errors import InputError


def load_json(text: str | bytes, what: str) -> Any:
    """Parse `text`.

    Raises:
        InputError: naming `what` and why it is not JSON.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{what} is not JSON: {error.msg} at line {error.lineno}") from None
    except UnicodeDecodeError:
        raise InputError(f"{what} is not UTF-8 text") from None
    except RecursionError:
        raise InputError(f"{what} is nested too deeply") from None
