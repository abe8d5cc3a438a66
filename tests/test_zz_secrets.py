"""The session's secrets scan (tests/session_checks.py runs it after every session, whatever was
selected): here, the scanner itself is shown to find what it looks for."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests import secrets_scan
from tests.session_checks import unlisted_skips
from tests.used_secrets import CODES, VALUES, remember, remember_code


def test_the_scan_finds_what_it_looks_for():
    # Planted outside the session's directory, so the session's own scan does not trip over them.
    with tempfile.TemporaryDirectory() as directory:
        base = Path(directory)
        remember("Planted-Secret-Value-1")
        remember_code("918273")
        try:
            (base / "service.log").write_text('{"message": "x Planted-Secret-Value-1"}\n'
                                              '{"message": "$2b$12$abcdefghijklmnopqrstuv"}\n'
                                              '{"message": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl"}\n'
                                              '{"message": "sent 918273"}\n'
                                              '{"id": "a918273b-0000"}\n')
            captured = [("tests/x.py::test_y [Captured stdout call]", "output Planted-Secret-Value-1\n")]
            outputs = []
            secrets_scan.keep("a command", b"printed Planted-Secret-Value-1\n")
            outputs.append(secrets_scan.OUTPUTS.pop())
            hits = secrets_scan.scan(secrets_scan.session_lines(captured, {"base": base}, outputs))
        finally:
            VALUES.discard("Planted-Secret-Value-1")
            CODES.discard("918273")
    assert hits == ["service.log:1: a secret the tests used (22 characters)", "service.log:2: a crypt/PHC hash",
                    "service.log:3: a JWT", "service.log:4: a mailed code",
                    "tests/x.py::test_y [Captured stdout call]:1: a secret the tests used (22 characters)",
                    "a command:1: a secret the tests used (22 characters)"]


def test_an_unlisted_skip_is_reported():
    skipped = [("tests/a.py::test_one[x]", "no browser"), ("tests/b.py::test_two", "no MariaDB")]
    assert unlisted_skips(skipped, {"tests/a.py::test_one": "listed"}) == ["tests/b.py::test_two: no MariaDB"]
