"""What the planner needs to know about a batch's users, read from the store, the ledger and the audit trail."""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa

from identity import audit
from identity.db import chunks
from identity.importer.ledger import Ledger
from identity.importer.plan import COLLISIONS, Facts
from identity.importer.profile import KiiUser
from identity.legacy.store import LegacyStore


def gather(users: list[KiiUser], ledger: Ledger, store: LegacyStore) -> Facts:
    ids = [user.kii_user_id for user in users]
    return Facts(stored=store.rows(ids), earlier=ledger.profile_ids(ids), staged=ledger.staged(ids),
                 holders=holders(users, ledger, store), deleted=deleted_users(store.engine, ids))


def deleted_users(engine: sa.Engine, ids) -> set[str]:
    """Users deleted for good, by the audit trail: named in an earlier run's `--deleted`, or who
    deleted their account here (the store no longer has them then)."""
    found = set()
    with engine.connect() as conn:
        for chunk in chunks(ids):
            found.update(conn.execute(sa.select(audit.TABLE.c.kii_user_id).where(
                audit.TABLE.c.kii_user_id.in_(chunk), audit.TABLE.c.event == "deleted")).scalars())
    return found


def holders(users: list[KiiUser], ledger: Ledger, store: LegacyStore) -> dict:
    """Who already holds each username/email/phone: the store (earlier deliveries) and this run's ledger."""
    found = defaultdict(dict)
    for kind in COLLISIONS:
        values = {getattr(u, kind) for u in users if getattr(u, kind)}
        queries = (
            (store.engine, lambda chunk: LegacyStore.holders_query(kind, chunk)),
            (ledger.engine, lambda chunk: ledger.claims_query(kind, chunk)),
        )
        for chunk in chunks(values):
            for engine, query in queries:
                with engine.connect() as conn:
                    _holders_of(conn, query, chunk, values, found[kind])
    return found


def _holders_of(conn, query, chunk: list, values: set, found: dict) -> None:
    rows = conn.execute(query(chunk)).all()
    for value, uid in rows:
        found.setdefault(value, uid)
    if all(value in values for value, _ in rows):
        return
    # The collation matched a value that is not one of ours ("jose" for "josé", a zero-width
    # character ignored): ask value by value whose each one is.
    for value in chunk:
        row = None if value in found else conn.execute(query([value]).limit(1)).first()
        if row:
            found[value] = row[1]
