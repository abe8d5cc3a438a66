"""A planned batch written: what Keycloak and the store's unique keys refuse becomes the line's failure.

No servers: an in-memory Keycloak behind the writer's methods, and the store and ledger tables in a
SQLite file (its unique keys refuse a duplicate as MariaDB's do).
"""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa

from identity.audit import AuditEvent
from identity.importer.apply import Applier, Timings
from identity.importer.ledger import RECORDS, RUNS, STAGED, Ledger
from identity.importer.plan import Facts, Planner
from identity.importer.profile import keycloak_id
from identity.importer.reader import Line
from identity.legacy.models import LegacyUser
from identity.legacy.store import LegacyStore

REALM = "china"
NOW = datetime(2024, 1, 2, 3, 4, 5)


class MemoryKeycloak:
    """The KeycloakWriter methods the applier calls, over a dict, with the provider's bulk answers;
    `others` hold usernames and emails of users not imported."""

    def __init__(self, others=()):
        self.users: dict[str, dict] = {}
        self.others = set(others)
        self.deleted: list[str] = []

    def write(self, reps):
        answers = {}
        for rep in reps:
            if rep["username"] in self.others or rep.get("email") in self.others:
                answers[rep["id"]] = ("refused", "username_taken")
            elif rep["id"] in self.users:
                changed = self.users[rep["id"]] != rep
                self.users[rep["id"]] = rep
                answers[rep["id"]] = ("updated" if changed else "unchanged", None)
            else:
                self.users[rep["id"]] = rep
                answers[rep["id"]] = ("created", None)
        return answers

    def delete_user(self, user_id):
        self.users.pop(user_id, None)
        self.deleted.append(user_id)


@pytest.fixture
def engine(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    for table in (LegacyUser.__table__, AuditEvent.__table__, RUNS, RECORDS, STAGED):
        table.create(engine)
    return engine


def profile(user_id: str) -> dict:
    return {"userID": user_id, "loginName": f"Login-{user_id}", "emailAddress": f"{user_id}@example.com",
            "_hasPassword": False, "_modified": 100}


def apply(engine, keycloak, *records, dry_run=False):
    ledger, store = Ledger(engine, "run-1"), LegacyStore(engine)
    plan = Planner("run-1", REALM, clock=lambda: NOW).plan(
        [Line(n, record=r) for n, r in enumerate(records, 1)], lambda users: Facts())
    Applier(ledger, store, keycloak, dry_run, Timings()).apply(plan)
    with engine.connect() as conn:
        outcomes = [(r.line_no, r.outcome, r.reason) for r in conn.execute(
            sa.select(RECORDS).order_by(RECORDS.c.line_no))]
        audited = sorted(conn.execute(sa.select(AuditEvent.__table__.c.kii_user_id)).scalars())
    return outcomes, sorted(store.rows(["u1", "u2", "old"])), audited


def test_a_batch_lands_in_keycloak_the_store_the_audit_and_the_ledger(engine):
    keycloak = MemoryKeycloak()
    outcomes, stored, audited = apply(engine, keycloak, profile("u1"), profile("u2"))
    assert outcomes == [(1, "imported", None), (2, "imported", None)]
    assert stored == audited == ["u1", "u2"]
    assert set(keycloak.users) == {keycloak_id(REALM, "u1"), keycloak_id(REALM, "u2")}


def test_a_username_another_keycloak_user_holds_fails_the_line_as_a_keycloak_conflict(engine):
    keycloak = MemoryKeycloak(others={"login-u1"})
    outcomes, stored, audited = apply(engine, keycloak, profile("u1"), profile("u2"))
    assert outcomes == [(1, "failed", "keycloak_conflict"), (2, "imported", None)]
    assert stored == audited == ["u2"]


def test_an_update_keycloak_refuses_fails_the_line_and_leaves_the_store_row(engine):
    keycloak = MemoryKeycloak()
    apply(engine, keycloak, profile("u1"))
    keycloak.others.add("taken@example.com")
    newer = {**profile("u1"), "emailAddress": "taken@example.com", "_modified": 200}
    ledger, store = Ledger(engine, "run-2"), LegacyStore(engine)
    plan = Planner("run-2", REALM, clock=lambda: NOW).plan(
        [Line(1, record=newer)], lambda users: Facts(stored=store.rows([u.kii_user_id for u in users])))
    Applier(ledger, store, keycloak, False, Timings()).apply(plan)
    with engine.connect() as conn:
        assert [(r.outcome, r.reason) for r in conn.execute(sa.select(RECORDS).where(RECORDS.c.run_id == "run-2"))] \
            == [("failed", "keycloak_conflict")]
    assert store.rows(["u1"])["u1"]["email"] == "u1@example.com"


def test_a_duplicate_only_the_store_sees_fails_that_line_and_its_keycloak_user_goes(engine):
    with engine.begin() as conn:
        LegacyStore(engine).insert(conn, [{"kii_user_id": "old", "email": "u1@example.com", "state": "pending",
                                           "created_at": NOW, "updated_at": NOW, "state_changed_at": NOW}])
    keycloak = MemoryKeycloak()
    outcomes, stored, audited = apply(engine, keycloak, profile("u1"), profile("u2"))
    assert outcomes == [(1, "failed", "duplicate_email"), (2, "imported", None)]
    assert stored == ["old", "u2"] and audited == ["u2"]
    assert keycloak.deleted == [keycloak_id(REALM, "u1")] and set(keycloak.users) == {keycloak_id(REALM, "u2")}


def test_a_dry_run_writes_the_ledger_only(engine):
    outcomes, stored, audited = apply(engine, None, profile("u1"), dry_run=True)
    assert outcomes == [(1, "imported", None)] and stored == audited == []
