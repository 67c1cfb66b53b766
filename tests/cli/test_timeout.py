"""`--timeout`: one bound on a whole command, retries and their waits included, ending
in one sentence that names what did not answer and how long it was waited for."""

from __future__ import annotations

import threading
import time

import pytest

from aksfw_core.cli.program import main
from aksfw_local.fakes.panorama import Fault
from aksfw_local.fakes.server import HttpResponse, LoopbackHTTPServer
from tests.support.cli import run


def test_a_hung_panorama_ends_registered_within_the_timeout(capsys, api_key, panorama):
    panorama.slow_seconds = 30.0
    panorama.inject(Fault.SLOW, count=10)
    started = time.monotonic()
    code, out, err = run(capsys, "registered", "--panorama", panorama.url, "--timeout", "2")
    took = time.monotonic() - started
    assert (code, out) == (1, "")
    assert took < 6
    assert err == f"aksfw: Panorama at {panorama.url} did not answer within 2 s (--timeout)\n"


def test_a_hung_app_ends_status_within_the_timeout(capsys):
    release = threading.Event()

    def app(request):
        release.wait(30)
        return HttpResponse(200, b"{}")

    server = LoopbackHTTPServer(app)
    server.start()
    url = server.url
    try:
        started = time.monotonic()
        code, out, err = run(capsys, "status", "--app", url, "--key", "k", "--timeout", "1.5")
        took = time.monotonic() - started
    finally:
        release.set()
        server.stop()
    assert (code, out) == (1, "")
    assert took < 6
    assert err == (f"aksfw: the Function App at {url} did not answer within 1.5 s (--timeout)\n")


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "3601", "soon"])
@pytest.mark.parametrize(
    "command",
    [
        ["registered", "--panorama", "https://127.0.0.1:1"],
        ["status", "--app", "http://127.0.0.1:1"],
        ["replay", "--app", "http://127.0.0.1:1"],
        ["uninstall", "--app", "http://127.0.0.1:1"],
        ["sync", "--cluster", "c", "--services", "-", "--panorama", "https://127.0.0.1:1"],
    ],
    ids=lambda words: words[0],
)
def test_a_timeout_out_of_bounds_is_bad_input(capsys, command, value):
    code, out, err = run(capsys, *command, "--timeout", value)
    assert (code, out) == (2, "")
    assert "--timeout" in err and "at most 3600" in err and err.count("\n") == 1


def test_watch_takes_no_timeout(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["watch", "--timeout", "5"])
    assert exit_.value.code == 2
    assert "--timeout" in capsys.readouterr().err
