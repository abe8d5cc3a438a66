"""Every secret the suite hands to the system under test, so the session's secrets scan (tests/secrets_scan.py) can look for
each of them in every log line and report the suite wrote."""

from __future__ import annotations

VALUES: set[str] = set()   # passwords, hashes, keys, client secrets
CODES: set[str] = set()    # the 6-digit codes mailed to users (matched as whole numbers)


def remember(*values) -> None:
    for value in values:
        if isinstance(value, str) and len(value) >= 6:
            VALUES.add(value)


def remember_code(code: str) -> None:
    CODES.add(code)
