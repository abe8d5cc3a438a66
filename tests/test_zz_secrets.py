"""Runs last (by name): no secret the suite used appears in any log line or report it wrote.

What is searched: the service's own log lines of the whole suite (tests/conftest.py's suite_logs,
formatted and redacted as production does), every *.log file and import report under the suite's
temporary directory (gunicorn workers' logs, import reports), and what Keycloak logged meanwhile.
What is searched for: every password, legacy hash, hash-key, client secret and admin password the
fixtures handed out (tests/used_secrets.py), every code mailed to a user, and anything shaped like
a token or a password hash.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

from tests.used_secrets import CODES, VALUES, remember

SHAPES = {
    "a JWT": re.compile(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}"),
    "a crypt/PHC hash": re.compile(r"\$(argon2i|argon2id|2[aby]|pbkdf2[\w-]*|scrypt|[156])\$[^\s\"',]{8,}"),
    "an LDAP hash": re.compile(r"\{(SSHA|SHA|SMD5|MD5|SSHA256|SSHA512|CRYPT)\}[A-Za-z0-9+/=]{8,}"),
    "a Bearer value": re.compile(r"(?i)bearer\s+(?!\[redacted\])[\w.~+/=-]{16,}"),
}
REPORT_NAMES = re.compile(r"(report|failures)[\w.-]*\.(json|md|csv|txt)$")


def written_files(suite_logs) -> list[Path]:
    base = Path(suite_logs["base"])
    return sorted(p for p in base.rglob("*") if p.is_file() and (p.suffix == ".log" or REPORT_NAMES.search(p.name)))


def lines_of(suite_logs):
    for path in written_files(suite_logs):
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                yield f"{path.name}:{number}", line
    keycloak_log = suite_logs["keycloak_log"]
    if keycloak_log.exists():
        with open(keycloak_log, encoding="utf-8", errors="replace") as handle:
            # From where it stood when the suite began (from the start if it was truncated since).
            start = suite_logs["keycloak_from"]
            handle.seek(start if keycloak_log.stat().st_size >= start else 0)
            for number, line in enumerate(handle, 1):
                yield f"keycloak.log:+{number}", line


def test_the_scan_finds_what_it_looks_for():
    # The scanner itself: a planted secret, hash and token are each found (outside the suite's
    # directory, so the real scan below does not trip over them).
    with tempfile.TemporaryDirectory() as directory:
        check_planted(Path(directory))


def check_planted(tmp_path: Path):
    remember("Planted-Secret-Value-1")
    suite = {"base": tmp_path, "keycloak_log": tmp_path / "none.log", "keycloak_from": 0}
    (tmp_path / "service.log").write_text('{"message": "x Planted-Secret-Value-1"}\n'
                                          '{"message": "$2b$12$abcdefghijklmnopqrstuv"}\n'
                                          '{"message": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl"}\n')
    found = [kind for where, line in lines_of(suite) for kind, p in SHAPES.items() if p.search(line)]
    assert found == ["a crypt/PHC hash", "a JWT"]
    assert any("Planted-Secret-Value-1" in line for _, line in lines_of(suite))
    VALUES.discard("Planted-Secret-Value-1")


def test_no_secret_in_any_log_or_report(suite_logs, request):
    if len(request.session.items) < 200:
        pytest.skip("reads what the whole suite wrote: run with the rest of it (make test)")
    files = written_files(suite_logs)
    assert any(p.name == "service.log" and p.stat().st_size > 0 for p in files), "the suite's log is missing"
    assert VALUES, "no secret was registered: the scan would prove nothing"
    # Whole tokens only: six digits inside a hex id (a UUID in Keycloak's events) are not a code.
    codes = re.compile(r"(?<![0-9A-Za-z])(" + "|".join(sorted(CODES)) + r")(?![0-9A-Za-z])") if CODES else None
    hits = []
    scanned = 0
    for where, line in lines_of(suite_logs):
        scanned += 1
        for value in VALUES:
            if value in line:
                hits.append(f"{where}: a secret the tests used ({len(value)} characters)")
        for kind, pattern in SHAPES.items():
            if pattern.search(line):
                hits.append(f"{where}: {kind}")
        if codes is not None and ("code" in line.lower()) and codes.search(line):
            hits.append(f"{where}: a mailed code")
    assert scanned > 1000, scanned
    assert not hits, "\n".join(hits[:50])
