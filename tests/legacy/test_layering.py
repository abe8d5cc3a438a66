"""`identity legacy layer`: killed halfway (SIGKILL) and rerun, every record is layered exactly once."""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from identity.db import db
from identity.legacy import hashes
from identity.legacy.credentials import LegacySettings
from identity.legacy.models import LegacyUser, MigrationState
from tests.secrets_scan import keep

HASH_KEY = "layering-test-hash-key"
COUNT = 400


def legacy_hash(i: int) -> tuple[str, str | None]:
    password = f"pw-{i}".encode()
    if i % 3 == 0:
        return "$sha256$" + hashes.b64encode(hashlib.sha256(password).digest()), None
    if i % 3 == 1:
        return "$hmac-sha256$" + hashes.b64encode(hmac.new(HASH_KEY.encode(), password, "sha256").digest()) + "$", None
    salt = f"s{i}"
    return hmac.new(HASH_KEY.encode(), password, "sha256").hexdigest(), salt  # bare, default scheme


@pytest.fixture
def legacy_rows(app_ctx):
    db.session.execute(sa.delete(LegacyUser))
    rows = []
    for i in range(COUNT):
        encoded, salt = legacy_hash(i)
        rows.append(LegacyUser(kii_user_id=f"layer-{i:05d}", username=f"layer{i}", password_hash=encoded, salt=salt,
                               state=MigrationState.pending))
    db.session.add_all(rows)
    db.session.commit()
    yield
    db.session.execute(sa.delete(LegacyUser))
    db.session.commit()


def layering_process(database_url: str) -> subprocess.Popen:
    env = {**os.environ, "IDENTITY_DATABASE_URL": database_url, "IDENTITY_LEGACY_HASH_KEY": HASH_KEY,
           "IDENTITY_LEGACY_DEFAULT_SCHEME": "hmac-sha256;encoding=hex",
           "IDENTITY_LEGACY_LAYER_MEMORY_KIB": "19456", "IDENTITY_LEGACY_LAYER_TIME_COST": "2"}
    identity = Path(sys.executable).parent / "identity"
    return subprocess.Popen([str(identity), "legacy", "layer", "--workers", "2", "--batch-size", "10"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def layered_count() -> int:
    db.session.rollback()
    return db.session.execute(sa.select(sa.func.count()).where(LegacyUser.hash_layered.is_(True))).scalar_one()


def test_killed_and_rerun_layers_everything_once(legacy_rows, database_url):
    process = layering_process(database_url)
    deadline = time.monotonic() + 120
    while layered_count() < 40:
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "layering made no progress"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the workers too
    process.wait()

    halfway = layered_count()
    assert 40 <= halfway < COUNT, "the kill must land mid-run"
    for user in db.session.scalars(sa.select(LegacyUser)):
        # Nothing half-written: the flag and the stored string changed together.
        assert user.hash_layered == user.password_hash.startswith(hashes.LAYERED_PREFIX)

    rerun = layering_process(database_url)
    out, err = rerun.communicate(timeout=300)
    keep("identity legacy layer (rerun)", out, err)
    assert rerun.returncode == 0, err.decode()[-2000:]
    assert f"layered {COUNT - halfway} hash(es)" in out.decode()

    settings = LegacySettings(hash_key=HASH_KEY.encode(), default_scheme="hmac-sha256;encoding=hex")
    db.session.rollback()  # forget what the session read before the rerun
    users = list(db.session.scalars(sa.select(LegacyUser).order_by(LegacyUser.kii_user_id)))
    assert len(users) == COUNT
    for user in users:
        i = int(user.kii_user_id.split("-")[1])
        original, _ = legacy_hash(i)
        assert user.hash_layered and user.password_hash.startswith(hashes.LAYERED_PREFIX)
        assert user.password_hash.count(hashes.LAYERED_PREFIX) == 1
        assert original not in user.password_hash
        if i % 40 == 0:  # argon2 per check: a sample keeps the test quick
            assert settings.verify(f"pw-{i}", user.password_hash, user.salt) is True
            assert settings.verify(f"pw-{i}x", user.password_hash, user.salt) is False
    # Both runs logged nothing secret.
    for text in (out.decode(), err.decode()):
        assert HASH_KEY not in text and "$sha256$" not in text and "$argon2id$" not in text

    again = layering_process(database_url)
    out, _ = again.communicate(timeout=120)
    assert again.returncode == 0 and "layered 0 hash(es)" in out.decode()


def test_unlayerable_records_are_reported_by_reason(app_ctx, database_url):
    db.session.execute(sa.delete(LegacyUser))
    db.session.add_all([
        LegacyUser(kii_user_id="bad-1", password_hash="$unknown$abc"),
        LegacyUser(kii_user_id="bad-2", password_hash="$sha256$tooshort"),
        LegacyUser(kii_user_id="ok-1", password_hash="$sha256$" + hashes.b64encode(hashlib.sha256(b"pw").digest())),
    ])
    db.session.commit()
    try:
        process = layering_process(database_url)
        out, err = process.communicate(timeout=120)
        keep("identity legacy layer (unlayerable)", out, err)
        text = out.decode()
        assert process.returncode == 1
        assert "layered 1 hash(es)" in text
        assert "not layered: 1 x unknown_hash_format: unknown hash prefix" in text
        assert "not layered: 1 x malformed_hash: sha256: wrong hash length" in text
        assert "tooshort" not in text + err.decode()
    finally:
        db.session.execute(sa.delete(LegacyUser))
        db.session.commit()
