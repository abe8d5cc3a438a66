"""The only tests allowed to be skipped in CI (`CI=true`), each with its reason.

Any other skip fails a CI run (tests/session_checks.py): a test that silently stops running is a check
that can no longer fail. Keys are test node ids (a prefix matches its parameters too).
"""

ALLOWED: dict[str, str] = {}
