"""Checks of the whole session (a plugin of tests/conftest.py), run after the last test whatever was selected.

- The secrets scan: no secret the suite handed out, no mailed code, nothing shaped like a token or a
  password hash, in any log line, report or captured test output the session wrote (tests/secrets_scan.py).
- In CI (`CI=true`), a skipped test fails the run unless tests/skips.py lists it with its reason.
"""

from __future__ import annotations

import os

import pytest

from tests import secrets_scan, skips

_skipped: list[tuple[str, str]] = []
_captured: list = []
_problems: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        _skipped.append((report.nodeid, reason))
    # Every test's captured output (stdout, stderr, log records), subprocess output a test printed included;
    # the teardown report carries the sections of all three phases.
    if report.when == "teardown":
        for name, text in report.sections:
            if text:
                _captured.append((f"{report.nodeid} [{name}]", text))


def unlisted_skips(skipped, allowed) -> list[str]:
    return [f"{nodeid}: {reason}" for nodeid, reason in skipped
            if not any(nodeid == key or nodeid.startswith(key + "[") for key in allowed)]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if getattr(session.config.option, "collectonly", False):
        return
    hits = secrets_scan.scan(secrets_scan.session_lines(_captured))
    if hits:
        _problems.append("secrets scan: " + str(len(hits)) + " finding(s)\n  " + "\n  ".join(hits[:50]))
    if os.environ.get("CI") == "true":
        unlisted = unlisted_skips(_skipped, skips.ALLOWED)
        if unlisted:
            _problems.append("skipped in CI without an entry in tests/skips.py:\n  " + "\n  ".join(unlisted))
    if _problems and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    for problem in _problems:
        terminalreporter.write_sep("=", "session check failed", red=True)
        terminalreporter.write_line(problem)
