"""Named locks shared by every service process: one sign-in at a time per user.

Why: with brute-force detection on, Keycloak refuses a user's concurrent
password checks ("user_temporarily_disabled": its fix for brute-force races),
so parallel sign-ins of one user would fail at random. Serialising them here,
per user, keeps every right password working and costs nothing across users.

MariaDB/MySQL: GET_LOCK/RELEASE_LOCK on a connection of the pool. SQLite
(development, one machine): an flock on a file per lock name.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa


class LockTimeout(Exception):
    pass


def sign_in_lock(engine: sa.Engine, username: str, timeout: float):
    """The lock every sign-in of one user takes (JSON API and Keycloak bridge alike)."""
    return named_lock(engine, f"sign-in:{username.lower()}", timeout)


@contextmanager
def named_lock(engine: sa.Engine, name: str, timeout: float):
    digest = hashlib.sha256(name.encode()).hexdigest()[:40]  # MySQL lock names: 64 characters at most
    if engine.dialect.name == "mysql":
        with engine.connect() as conn:
            got = conn.execute(sa.text("SELECT GET_LOCK(:n, :t)"), {"n": f"identity:{digest}",
                                                                    "t": max(1, int(timeout))}).scalar()
            if got != 1:
                raise LockTimeout(name)
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": f"identity:{digest}"})
                conn.commit()
        return
    directory = Path(engine.url.database or "/tmp").resolve().parent / "locks"
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / digest, "a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockTimeout(name) from None
                time.sleep(0.01)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            os.utime(handle.name)
