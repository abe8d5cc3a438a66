"""docs/cutover.md's commands, run in order on the bundled sample: the runbook works as written."""

from __future__ import annotations

import gzip
import json
import re
import shlex
import shutil

from tests.conftest import ROOT
from tests.importer.conftest import read_report


def runbook_commands() -> list[list[str]]:
    text = (ROOT / "docs" / "cutover.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        commands += [shlex.split(line) for line in block.splitlines() if line.startswith("identity ")]
    return commands


def test_runbook_on_the_bundled_sample(import_app, tmp_path, master_admin, import_realm):
    first, second, reports = tmp_path / "first", tmp_path / "second", tmp_path / "reports"
    shutil.copytree(ROOT / "config" / "sample", first)
    shutil.copytree(first, second)
    user_ids = []
    for line in gzip.open(first / "profiles.jsonl.gz"):
        try:
            user_ids.append(json.loads(line)["userID"])
        except (ValueError, KeyError):
            continue  # the sample's deliberately broken lines
    user_ids = user_ids[5:7]
    (second / "deleted.txt").write_text("\n".join(user_ids) + "\n")
    paths = {"$FIRST": str(first), "$SECOND": str(second), "$REPORTS": str(reports)}

    commands = runbook_commands()
    assert len(commands) >= 10
    runner = import_app.test_cli_runner()
    for argv in commands:
        argv = [re.sub(r"\$[A-Z]+", lambda m: paths[m.group(0)], a) for a in argv[1:]]
        result = runner.invoke(args=argv, catch_exceptions=False)
        assert result.exit_code == 0, (argv, result.output[-2000:])

    first_report = read_report(reports / "first.json")
    assert first_report["profiles"]["imported"] == json.loads((first / "manifest.json").read_text())["totals"]["imported"]
    second_report = read_report(reports / "second.json")
    assert second_report["deleted"]["disabled"] == 2
    assert read_report(reports / "second-verify.json")["ok"] is True
    assert (reports / "first-dry-run.md").exists() and (reports / "second.md").exists()
