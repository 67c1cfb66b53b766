"""What a person reads is text, never terminal control: names from a services file (or an
API server) are printed with their control characters escaped (`logs.printable`)."""

from __future__ import annotations

import json
import logging

import pytest

from aksfw_core.logs import TerminalFormatter, log_event, printable
from aksfw_local.fakes.kube_api import service
from tests.support.cli import run

ESCAPE = "\x1b[2J\x1b]0;pwned\x07"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text, ünïcode", "plain text, ünïcode"),
        ("a\x1b[31mred", "a\\x1b[31mred"),
        ("two\nlines", "two\\nlines"),
        ("right\u202eto left", "right\\u202eto left"),
    ],
)
def test_control_characters_are_shown_escaped(text, shown):
    assert printable(text) == shown


def test_a_warning_about_a_hostile_label_does_not_reach_the_terminal_raw(capsys, tmp_path):
    web = service("web", "shop", ips=["20.0.0.1"], labels={"evil": f"x{ESCAPE}"})
    listing = tmp_path / "services.json"
    listing.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [web]}))
    code, out, err = run(capsys, "tags", "--cluster", "c1", str(listing))
    assert code == 0
    assert "warning:" in err and "\\x1b[2J" in err  # the tag is dropped, and said so
    assert "\x1b" not in err + out and "\x07" not in err


def test_log_lines_for_a_person_escape_what_an_event_carries():
    record = logging.LogRecord("aksfw_core.x", logging.WARNING, "", 0, "%s", None, None)
    logger = logging.getLogger("aksfw_core.test_terminal")
    captured: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = captured.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        log_event(logger, "tags.warning", logging.WARNING, detail=f"service {ESCAPE}")
    finally:
        logger.removeHandler(handler)
    (record,) = captured
    line = TerminalFormatter().format(record)
    assert "\x1b" not in line  # the JSON line escapes too; the sentence must as well


def test_an_event_with_a_sentence_is_shown_as_that_sentence():
    record = logging.LogRecord("aksfw_core.x", logging.WARNING, "", 0, "%s", None, None)
    record.msg = json.dumps(
        {"event": "panorama.registered_count_unreadable", "message": "Panorama did not say."}
    )
    record.event = "panorama.registered_count_unreadable"
    assert TerminalFormatter().format(record) == "aksfw: warning: Panorama did not say."
