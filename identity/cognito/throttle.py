"""Per-client-address failure counting, in the database so every worker process sees it."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

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
            with self.engine.begin() as conn:
                counted = conn.execute(TABLE.update().where(
                    TABLE.c.client_key == key, TABLE.c.window_started_at > now - self.window)
                    .values(failures=TABLE.c.failures + 1)).rowcount
                if counted:
                    return
                restarted = conn.execute(TABLE.update().where(TABLE.c.client_key == key)
                                         .values(failures=1, window_started_at=now)).rowcount
                if restarted:
                    return
                try:
                    with conn.begin_nested():
                        conn.execute(TABLE.insert().values(client_key=key, failures=1, window_started_at=now))
                    return
                except IntegrityError:
                    continue
