"""Structured (JSON) logs that never carry a secret.

Two defences: fields whose names say they are secret are dropped whatever
their value, and anything that looks like a token, a password hash or an
Authorization header is masked in every message, so a careless
``log.info("... %s", token)`` cannot leak one either.
"""

from __future__ import annotations

import logging
import re
import sys

from pythonjsonlogger.json import JsonFormatter

SECRET_FIELD = re.compile(r"pass(word)?|secret|token|hash|key|code|authorization|cookie|salt", re.I)
_MASKS = [
    # JWTs (three base64url parts) and opaque bearer values after "Bearer".
    re.compile(r"eyJ[\w-]*\.[\w-]*\.[\w-]*"),
    re.compile(r"(?i)(bearer\s+)[\w.~+/=-]+"),
    # Modular-crypt / PHC strings ($2b$..., $argon2id$..., $pbkdf2-sha256$...) and LDAP {SSHA} forms.
    re.compile(r"\$[\w-]{1,20}\$[^\s\"',]{8,}"),
    re.compile(r"\{[A-Z0-9]{2,10}\}[A-Za-z0-9+/=]{8,}"),
]
REDACTED = "[redacted]"


def scrub(text: str) -> str:
    for pattern in _MASKS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


class RedactingFilter(logging.Filter):
    _standard = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = str(record.msg)
        record.msg, record.args = scrub(message), None
        for name in list(vars(record)):
            if name in self._standard:
                continue
            if SECRET_FIELD.search(name):
                setattr(record, name, REDACTED)
            elif isinstance(getattr(record, name), str):
                setattr(record, name, scrub(getattr(record, name)))
        if record.exc_info and record.exc_info[1] is not None:
            # Exception texts can quote request bodies; keep the type and a scrubbed text.
            exc = record.exc_info[1]
            record.exc_text = scrub(f"{type(exc).__name__}: {exc}")
            record.exc_info = None
        return True


def json_handler(handler: logging.Handler) -> logging.Handler:
    """`handler`, writing the service's JSON lines with every secret masked."""
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                       rename_fields={"levelname": "level", "name": "logger"}))
    handler.addFilter(RedactingFilter())
    return handler


def configure(level: str = "INFO", stream=None) -> logging.Handler:
    """Install one JSON handler on the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_identity", False):
            root.removeHandler(handler)
    handler = json_handler(logging.StreamHandler(stream or sys.stderr))
    handler._identity = True
    root.addHandler(handler)
    root.setLevel(level)
    # urllib3 logs full URLs at DEBUG, which may carry codes in query strings.
    logging.getLogger("urllib3").setLevel(max(logging.INFO, root.level))
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    return handler


def init_app(app) -> None:
    configure(str(app.config["LOG_LEVEL"]).upper())
    # Flask's own logger propagates to the root handler; drop its default stderr handler.
    app.logger.handlers.clear()
    app.logger.propagate = True
