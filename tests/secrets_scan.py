"""The scanner behind the session's secrets check: what it reads and what it looks for.

What is read: the service's own log lines of the session (tests/conftest.py's suite_logs, formatted
and redacted as in production), every *.log file and import report under the session's temporary
directory (gunicorn workers' logs, import reports), what Keycloak logged meanwhile, every test's
captured output, and what the commands the tests ran printed (`keep`). What is looked for: every password, legacy hash, hash-key, client secret and admin
password the fixtures handed out (tests/used_secrets.py), every code mailed to a user (as a whole
number, on any line), and anything shaped like a token or a password hash.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.used_secrets import CODES, VALUES

SHAPES = {
    "a JWT": re.compile(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}"),
    "a crypt/PHC hash": re.compile(r"\$(argon2i|argon2id|2[aby]|pbkdf2[\w-]*|scrypt|[156])\$[^\s\"',]{8,}"),
    "an LDAP hash": re.compile(r"\{(SSHA|SHA|SMD5|MD5|SSHA256|SSHA512|CRYPT)\}[A-Za-z0-9+/=]{8,}"),
    "a Bearer value": re.compile(r"(?i)bearer\s+(?!\[redacted\])[\w.~+/=-]{16,}"),
}
REPORT_NAMES = re.compile(r"(report|failures)[\w.-]*\.(json|md|csv|txt)$")
# Where the session's files are (set by tests/conftest.py's suite_logs when the session starts).
SESSION: dict = {}
# What the commands the tests ran printed (`keep`), scanned with the rest.
OUTPUTS: list[tuple[str, str]] = []


def keep(where: str, *outputs) -> None:
    """Hand a command's stdout/stderr (bytes or text) to the session's scan."""
    for output in outputs:
        if output:
            OUTPUTS.append((where, output.decode("utf-8", "replace") if isinstance(output, bytes) else output))


def written_files(base: Path) -> list[Path]:
    return sorted(p for p in Path(base).rglob("*") if p.is_file() and (p.suffix == ".log" or REPORT_NAMES.search(p.name)))


def file_lines(base: Path, keycloak_log: Path | None = None, keycloak_from: int = 0):
    for path in written_files(base):
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                yield f"{path.name}:{number}", line
    if keycloak_log is not None and keycloak_log.exists():
        with open(keycloak_log, encoding="utf-8", errors="replace") as handle:
            # From where it stood when the session began (from the start if it was truncated since).
            handle.seek(keycloak_from if keycloak_log.stat().st_size >= keycloak_from else 0)
            for number, line in enumerate(handle, 1):
                yield f"keycloak.log:+{number}", line


def session_lines(captured, session: dict | None = None, outputs: list | None = None):
    """Every line the session wrote: its files, the tests' captured output, the commands' output."""
    session = SESSION if session is None else session
    if session:
        yield from file_lines(session["base"], session.get("keycloak_log"), session.get("keycloak_from", 0))
    for where, text in [*captured, *(OUTPUTS if outputs is None else outputs)]:
        for number, line in enumerate(text.splitlines(), 1):
            yield f"{where}:{number}", line


def scan(lines) -> list[str]:
    """Where each secret, code or secret-shaped value was found (never the value itself)."""
    # Whole numbers only: six digits inside a hex id (a UUID in Keycloak's events) are not a code.
    codes = re.compile(r"(?<![0-9A-Za-z])(" + "|".join(sorted(CODES)) + r")(?![0-9A-Za-z])") if CODES else None
    hits = []
    for where, line in lines:
        for value in VALUES:
            if value in line:
                hits.append(f"{where}: a secret the tests used ({len(value)} characters)")
        for kind, pattern in SHAPES.items():
            if pattern.search(line):
                hits.append(f"{where}: {kind}")
        if codes is not None and codes.search(line):
            hits.append(f"{where}: a mailed code")
    return hits
