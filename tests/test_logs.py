"""Logs are JSON, and neither a field nor a message can carry a secret."""

from __future__ import annotations

import io
import json
import logging

import pytest

from identity import logs

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLXBhcnQ"
SECRETS = ["Correct-Horse-42", JWT, "$2b$12$abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQ",
           "{SSHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g"]


@pytest.fixture
def capture():
    stream = io.StringIO()
    root, urllib3 = logging.getLogger(), logging.getLogger("urllib3")
    levels = root.level, urllib3.level
    handler = logs.configure("DEBUG", stream=stream)
    yield stream
    root.removeHandler(handler)
    # DEBUG left on would have every later test's clients (botocore) log their request bodies.
    root.setLevel(levels[0])
    urllib3.setLevel(levels[1])


def lines(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines(capture):
    logging.getLogger("identity.test").info("hello %s", "world", extra={"kii_user_id": "u1"})
    [record] = lines(capture)
    assert record["message"] == "hello world"
    assert record["level"] == "INFO"
    assert record["kii_user_id"] == "u1"


def test_secret_fields_are_dropped(capture):
    log = logging.getLogger("identity.test")
    log.info("sign-in", extra={"password": SECRETS[0], "refresh_token": JWT, "legacy_hash": SECRETS[2],
                               "hash_key": "k3y-material", "confirmation_code": "123456"})
    text = capture.getvalue()
    for secret in [SECRETS[0], JWT, SECRETS[2], "k3y-material", "123456"]:
        assert secret not in text
    assert lines(capture)[0]["password"] == "[redacted]"


@pytest.mark.parametrize("secret", SECRETS[1:])
def test_secret_looking_text_is_masked_in_messages(capture, secret):
    log = logging.getLogger("identity.test")
    log.warning("got %s from upstream", secret)
    log.warning("Authorization: Bearer %s", "opaque-token-value")
    try:
        raise ValueError(f"bad value {secret}")
    except ValueError:
        log.exception("failed")
    text = capture.getvalue()
    assert secret not in text
    assert "opaque-token-value" not in text
    assert "[redacted]" in text
