"""Per-client-address failure counting, in the database so every worker process sees it."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from identity.cognito.models import ClientFailure
from identity.legacy.models import utcnow

TABLE = ClientFailure.__table__


class ClientThrottle:
    def __init__(self, engine: sa.Engine, limit: int, window_seconds: int):
        self.engine, self.limit, self.window = engine, limit, timedelta(seconds=window_seconds)

    def blocked(self, client: str | None) -> bool:
        if not client or self.limit <= 0:
            return False
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(TABLE.c.failures, TABLE.c.window_started_at)
                               .where(TABLE.c.client_key == client[:64])).first()
        return bool(row and row.window_started_at > utcnow() - self.window and row.failures >= self.limit)

    def failure(self, client: str | None) -> None:
        if not client or self.limit <= 0:
            return
        key, now = client[:64], utcnow()
        for _ in range(3):  # an insert racing another process's insert: retry as an update
            try:
                if self._count(key, now):
                    return
            except OperationalError as exc:
                if not _lost_race(exc):
                    raise

    def _count(self, key: str, now) -> bool:
        """One failure counted (True), or a first insert refused by another process's (False)."""
        with self.engine.begin() as conn:
            counted = conn.execute(TABLE.update().where(
                TABLE.c.client_key == key, TABLE.c.window_started_at > now - self.window)
                .values(failures=TABLE.c.failures + 1)).rowcount
            if counted:
                return True
            restarted = conn.execute(TABLE.update().where(TABLE.c.client_key == key)
                                     .values(failures=1, window_started_at=now)).rowcount
            if restarted:
                return True
            try:
                with conn.begin_nested():
                    conn.execute(TABLE.insert().values(client_key=key, failures=1, window_started_at=now))
                return True
            except IntegrityError:
                return False


# MariaDB's deadlock and lock-wait timeout: two processes' first failures from one address lock the same
# gap and one transaction is rolled back whole, its savepoint with it (hence the lost savepoint too).
RACES = {1205, 1213, 1305}


def _lost_race(exc: OperationalError) -> bool:
    """Whether this error is the database ending one of two racing transactions: counting again will do."""
    code = getattr(exc.orig, "args", [None])[0]
    return code in RACES
