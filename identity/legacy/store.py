"""The legacy store's one owner: every read and write of ``legacy_users`` is a method here.

Writes that belong to a larger transaction (an audit row, the importer's ledger,
the first-login row lock) take the caller's connection, so the caller keeps its
commit boundaries; the rest open their own. tests/legacy/test_store_owner.py
fails when another module writes the table.
"""

from __future__ import annotations

from collections import defaultdict

import re
from datetime import datetime
from typing import Callable

import sqlalchemy as sa

from identity.db import chunks
from identity.legacy.models import LegacyUser, MigrationState

USERS = LegacyUser.__table__
UNLAYERED = sa.and_(USERS.c.password_hash.is_not(None), USERS.c.hash_layered.is_(False))

# Answered from ix_legacy_users_state_disabled alone (a covering index scan), so it stays
# cheap on millions of rows; tests/legacy/test_store.py shows the plan.
STATS_QUERY = sa.select(USERS.c.state, USERS.c.disabled, sa.func.count().label("n")).group_by(
    USERS.c.state, USERS.c.disabled)
# The unique key a refused row broke, in MySQL/MariaDB's and SQLite's words.
REFUSED_KEY = re.compile(r"for key '(?:legacy_users\.)?([^']+)'|failed: legacy_users\.(\w+)")
UNIQUE_COLUMNS = ("username", "email", "phone_number")


def joinable(name: str) -> sa.Alias:
    """legacy_users under an alias, for the set operations that read it joined with tables of their own
    (the import's unchanged lines, verify's reconciliation). For reading only: tests/legacy/
    test_store_owner.py counts a write through it as a write outside the store."""
    return USERS.alias(name)


def _without_hash(**values) -> dict:
    """The legacy hash gone for good (migrated, reset or deleted), with the other changes."""
    return {"password_hash": None, "salt": None, "hash_fingerprint": None, "hash_layered": False, **values}


def migration_stats(engine: sa.Engine) -> dict[str, int]:
    stats = {state.value: 0 for state in MigrationState}
    stats["disabled"] = 0
    with engine.connect() as conn:
        for state, disabled, count in conn.execute(STATS_QUERY):
            stats[getattr(state, "value", state)] += count
            if disabled:
                stats["disabled"] += count
    stats["total"] = sum(stats[s.value] for s in MigrationState)
    return stats


class LegacyStore:
    def __init__(self, engine: sa.Engine):
        self.engine = engine

    # --- sign-in look-ups -----------------------------------------------------------

    def find(self, username: str | None = None, email: str | None = None, phone: str | None = None):
        """The row for a sign-in identifier (already normalised), or None."""
        clauses = []
        if username:
            clauses.append(USERS.c.username == username)
        if email:
            clauses.append(USERS.c.email == email)
        if phone:
            clauses.append(USERS.c.phone_number == phone)
        if not clauses:
            return None
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(USERS).where(sa.or_(*clauses)).limit(2)).mappings().all()
        # Two different users match (a loginName equal to another's email): refuse to guess.
        return rows[0] if len(rows) == 1 else None

    def for_keycloak_user(self, keycloak_user_id: str):
        """The row a Keycloak user was imported as, or None."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(USERS).where(USERS.c.keycloak_user_id == keycloak_user_id)).mappings().first()

    def get(self, kii_user_id: str):
        with self.engine.connect() as conn:
            return conn.execute(sa.select(USERS).where(USERS.c.kii_user_id == kii_user_id)).mappings().first()

    # --- sign-in writes, in the caller's transaction ------------------------------------

    def lock(self, conn: sa.Connection, kii_user_id: str):
        """The row, re-read and locked until the caller's transaction ends."""
        if conn.dialect.name == "sqlite":
            # SQLite ignores FOR UPDATE: a no-op write takes the database's write lock instead.
            conn.execute(USERS.update().where(USERS.c.kii_user_id == kii_user_id)
                         .values(kii_user_id=USERS.c.kii_user_id))
        return conn.execute(sa.select(USERS).where(USERS.c.kii_user_id == kii_user_id)
                            .with_for_update()).mappings().one()

    def count_failure(self, conn: sa.Connection, kii_user_id: str, now: datetime) -> int:
        """One more wrong password; the count so far."""
        conn.execute(USERS.update().where(USERS.c.kii_user_id == kii_user_id)
                     .values(failed_attempts=USERS.c.failed_attempts + 1, last_failed_at=now))
        return conn.execute(sa.select(USERS.c.failed_attempts)
                            .where(USERS.c.kii_user_id == kii_user_id)).scalar_one()

    def lock_out(self, conn: sa.Connection, kii_user_id: str, until: datetime) -> None:
        conn.execute(USERS.update().where(USERS.c.kii_user_id == kii_user_id).values(locked_until=until))

    def mark_migrated(self, conn: sa.Connection, kii_user_id: str, now: datetime) -> None:
        """Keycloak holds the user's password now: the legacy hash goes, the failure count with it."""
        conn.execute(USERS.update().where(USERS.c.kii_user_id == kii_user_id).values(**_without_hash(
            state=MigrationState.migrated.value, failed_attempts=0, locked_until=None, migrated_at=now,
            state_changed_at=now, updated_at=now)))

    def require_reset(self, conn: sa.Connection, kii_user_id: str, now: datetime) -> None:
        """The legacy hash goes for good and no password takes its place: a reset by email is next."""
        conn.execute(USERS.update().where(USERS.c.kii_user_id == kii_user_id).values(**_without_hash(
            state=MigrationState.reset_required.value, failed_attempts=0, locked_until=None,
            state_changed_at=now, updated_at=now)))

    def delete_for_keycloak_user(self, conn: sa.Connection, keycloak_user_id: str) -> str | None:
        """The row of a Keycloak user gone; its Kii userID, or None when there was none."""
        kii_user_id = conn.execute(sa.select(USERS.c.kii_user_id)
                                   .where(USERS.c.keycloak_user_id == keycloak_user_id)).scalar()
        conn.execute(USERS.delete().where(USERS.c.keycloak_user_id == keycloak_user_id))
        return kii_user_id

    # --- the importer ---------------------------------------------------------------------

    def rows(self, ids) -> dict[str, dict]:
        """The rows of these Kii userIDs, by userID (absent ones left out)."""
        found = {}
        with self.engine.connect() as conn:
            for chunk in chunks(ids):
                for row in conn.execute(sa.select(USERS).where(USERS.c.kii_user_id.in_(chunk))).mappings():
                    found[row["kii_user_id"]] = dict(row)
        return found

    def any(self) -> bool:
        """Whether the store holds any user (before the first delivery it holds none)."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(USERS.c.kii_user_id).limit(1)).first() is not None

    @staticmethod
    def holders_query(kind: str, values) -> sa.Select:
        """(value, kii_user_id) of the users holding these usernames, emails or phone numbers."""
        return sa.select(USERS.c[kind], USERS.c.kii_user_id).where(USERS.c[kind].in_(values))

    def unlisted(self, listed: Callable[[sa.ColumnElement], sa.ColumnElement], examples: int) -> tuple[int, list[str]]:
        """How many users a condition on their Kii userID (`listed`) leaves out, and the first few of them."""
        left_out = ~listed(USERS.c.kii_user_id)
        with self.engine.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(USERS).where(left_out)).scalar()
            first = conn.execute(sa.select(USERS.c.kii_user_id).where(left_out).order_by(USERS.c.kii_user_id)
                                 .limit(examples)).scalars()
            return count, list(first)

    def ids_after(self, last: str, limit: int = 5000) -> list[str]:
        """The next Kii userIDs after `last`, in order: a walk over the whole store in pages."""
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(USERS.c.kii_user_id).where(USERS.c.kii_user_id > last)
                                     .order_by(USERS.c.kii_user_id).limit(limit)).scalars())

    @staticmethod
    def refused_column(error: sa.exc.IntegrityError) -> str:
        """The column whose unique key refused a row (never the value itself); kii_user_id for the primary key."""
        matches = list(REFUSED_KEY.finditer(str(error.orig)))  # the last: the quoted value may look like one
        key = (matches[-1].group(1) or matches[-1].group(2)) if matches else ""
        return next((column for column in UNIQUE_COLUMNS if key.endswith(column)), "kii_user_id")

    def state_counts(self) -> list[tuple]:
        """(state, disabled, how many) for each pair present."""
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(STATS_QUERY)]

    def insert(self, conn: sa.Connection, rows: list[dict]) -> None:
        conn.execute(USERS.insert(), rows)

    def update_many(self, conn: sa.Connection, changes: list[dict]) -> None:
        """Each {"kii_user_id", column: value, ...} applied; one statement for the changes of each shape."""
        shapes = defaultdict(list)
        for change in changes:
            shapes[tuple(sorted(k for k in change if k != "kii_user_id"))].append(change)
        for columns, group in shapes.items():
            statement = USERS.update().where(USERS.c.kii_user_id == sa.bindparam("k_id")).values(
                {column: sa.bindparam(f"v_{column}") for column in columns})
            conn.execute(statement, [{"k_id": c["kii_user_id"], **{f"v_{k}": c[k] for k in columns}} for c in group])

    def mark_deleted(self, conn: sa.Connection, kii_user_id: str, state: str, now: datetime,
                     state_changed: bool) -> None:
        """Deleted in Kii: disabled for good, the legacy hash gone."""
        values = _without_hash(disabled=True, state=state, updated_at=now)
        if state_changed:
            values["state_changed_at"] = now
        conn.execute(USERS.update().where(USERS.c.kii_user_id == kii_user_id).values(**values))

    # --- `identity legacy layer` -----------------------------------------------------------

    def count_unlayered(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).where(UNLAYERED)).scalar_one()

    def unlayered_after(self, last: str, limit: int) -> list[tuple[str, str, str | None]]:
        """(kii_user_id, hash, salt) of the next unlayered rows after `last`, in primary-key order."""
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(
                sa.select(USERS.c.kii_user_id, USERS.c.password_hash, USERS.c.salt)
                .where(UNLAYERED, USERS.c.kii_user_id > last)
                .order_by(USERS.c.kii_user_id).limit(limit)).all()]

    def layer(self, done: list[dict]) -> int:
        """Each {"k_id", "old", "new"} hash replaced by its layered form, in one transaction, only where
        the row still holds the old one unlayered; how many were."""
        update = (USERS.update()
                  .where(USERS.c.kii_user_id == sa.bindparam("k_id"),
                         USERS.c.password_hash == sa.bindparam("old"),
                         USERS.c.hash_layered.is_(False))
                  .values(password_hash=sa.bindparam("new"), hash_layered=True))
        with self.engine.begin() as conn:
            return conn.execute(update, done).rowcount
