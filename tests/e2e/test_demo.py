"""`make demo` explains itself: no stray log line, the reason each event resynced the
cluster, and every part it started stopped at the end."""

from __future__ import annotations

import pytest

from examples import demo


@pytest.mark.azurite
def test_demo_output_has_no_log_lines_and_says_why_the_cluster_was_resynced(capsys):
    demo.main()
    out, err = capsys.readouterr()
    lines = (out + err).splitlines()
    assert not [line for line in lines if line.lstrip().startswith("{") or "warning:" in line]
    assert err == ""
    assert (
        "resolved: resync of cluster aks-prod1, because microsoft.network/publicipaddresses "
        "in node resource group MC_rg-prod_aks-prod1_westeurope deleted" in out
    )
    assert "aksfw lists every" in out
    for name in ("Resource Manager (fake)", "Kubernetes API (fake)", "Panorama (simulator)",
                 "Azurite (Storage emulator)"):  # fmt: skip
        assert any(line.startswith(name) and "127.0.0.1:" in line for line in lines)
    assert lines[-1] == "Stopped: Resource Manager, Kubernetes API, Panorama, Azurite."
