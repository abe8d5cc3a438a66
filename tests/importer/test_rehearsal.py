"""`make rehearsal` at a few thousand users: cut-over night end to end, on its own Keycloak in production
mode on MariaDB (scripts/rehearsal.py; docs/cutover.md)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_a_small_rehearsal_of_cut_over_night(tmp_path):
    figures = tmp_path / "rehearsal.json"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "rehearsal.py"), "--users", "3000",
                           "--small-users", "1500", "--no-docs", "--json", str(figures)],
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = json.loads(figures.read_text(encoding="utf-8"))
    assert [run["users"] for run in runs] == [1500, 3000]
    for run in runs:
        verify = run["verify"]
        assert verify["ok"] and verify["add_up"], verify["reasons"]
        assert verify["totals"]["signed_up_here"] == 1
        assert verify["reasons"]["migrated_password_kept"]["count"] >= 1
        assert verify["reasons"]["deleted_on_kii"]["count"] == run["changes"]["deleted"] > 0
        assert run["checks"] and all(run["checks"].values())
        second = run["second"]
        # The cut-off delivery touched only what changed: the rest was unchanged, without a Keycloak write.
        assert second["profiles"]["imported"] == run["changes"]["new"]
        assert second["profiles"]["unchanged"] > 0.9 * second["profiles"]["input"]
        assert second["deleted"]["disabled"] == run["changes"]["deleted"]
        # ...and its verify parsed only lines the first delivery's verify had not seen.
        assert verify["lines_worked_out"]["remembered"] > 0.9 * verify["totals"]["input"]
        assert verify["lines_worked_out"]["parsed"] < 0.1 * verify["totals"]["input"]
        assert set(run["steps"]) == {"first delivery import", "first delivery verify", "cut-off delivery import",
                                     "migration verify"}
    assert "projected two-million cut-off window:" in done.stdout
