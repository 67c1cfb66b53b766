"""JSON from outside: one reader, and what it refuses (`aksfw_core.jsondoc`)."""

from __future__ import annotations

import pytest

from aksfw_core.errors import InputError
from aksfw_core.jsondoc import load_json


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"a": 1, "a": 2}', "the key 'a' twice"),
        ('{"x": {"a": 1, "b": 2, "a": 1}}', "the key 'a' twice"),  # same value, nested
        ('[{"a": 1}, {"a": 1, "a": 1}]', "the key 'a' twice"),
        ("{oops", "is not JSON"),
        (b"\xff", "is not UTF-8"),
    ],
)
def test_bad_json_is_refused_naming_why(text, reason):
    with pytest.raises(InputError, match=reason):
        load_json(text, "the file")


def test_the_same_key_in_different_objects_is_fine():
    assert load_json('[{"a": 1}, {"a": 2}]', "the file") == [{"a": 1}, {"a": 2}]
