"""Per-client-address failure counting, in the database so every worker process sees it."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from identity.cognito.models import ClientFailure
from identity.db import transaction
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
        for _ in range(3):  # an insert refused by another process's: counted by the update next time
            if transaction(self.engine, lambda conn: self._count(conn, key, now)):
                return

    def _count(self, conn: sa.Connection, key: str, now) -> bool:
        """One failure counted (True), or a first insert refused by another process's (False)."""
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
