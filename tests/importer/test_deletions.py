"""Each `--deleted` line's outcome, decided from facts held in memory (no Keycloak, no database)."""

from __future__ import annotations

from datetime import datetime

from identity.importer.deletions import decide
from identity.importer.profile import keycloak_id
from identity.importer.reader import Line

NOW = datetime(2024, 1, 2, 3, 4, 5)


def row(user_id: str, state: str = "pending", disabled: bool = False, password_hash: str | None = "$h$",
        keycloak_user_id: str | None = "kc-id") -> dict:
    return {"kii_user_id": user_id, "state": state, "disabled": disabled, "password_hash": password_hash,
            "keycloak_user_id": keycloak_user_id}


def run(lines, stored, deleted=()):
    records, changes = decide("run-1", "china", lines, stored, set(deleted), clock=lambda: NOW)
    return [(r["line_no"], r["outcome"], r["reason"]) for r in records], changes


def test_a_stored_user_is_disabled_and_loses_the_hash_for_good():
    outcomes, (change,) = run([Line(1, record="u1")], {"u1": row("u1")})
    assert outcomes == [(1, "disabled", None)]
    assert change == {"k": "u1", "state": "reset_required", "now": NOW, "changed": True,
                      "keycloak_user_id": "kc-id", "disable": "kc-id"}


def test_a_migrated_user_stays_migrated_and_a_user_without_keycloak_id_is_found_by_the_derived_one():
    _, (change,) = run([Line(1, record="u1")], {"u1": row("u1", state="migrated", keycloak_user_id=None)})
    assert change["state"] == "migrated" and not change["changed"]
    assert change["disable"] == keycloak_id("china", "u1")


def test_an_already_deleted_user_is_unchanged():
    stored = {"u1": row("u1", state="reset_required", disabled=True, password_hash=None)}
    assert run([Line(1, record="u1")], stored, deleted={"u1"}) == ([(1, "unchanged", None)], [])


def test_the_same_user_twice_is_disabled_once():
    outcomes, changes = run([Line(1, record="u1"), Line(2, record="u1")], {"u1": row("u1")})
    assert outcomes == [(1, "disabled", None), (2, "unchanged", None)] and len(changes) == 1


def test_unknown_unreadable_and_empty_lines_fail():
    lines = [Line(1, record="nobody"), Line(2, reason="invalid_user_id"), Line(3, record="")]
    outcomes, changes = run(lines, {})
    assert outcomes == [(1, "failed", "deleted_unknown_user"), (2, "failed", "invalid_user_id"),
                        (3, "failed", "missing_user_id")]
    assert changes == []


def test_the_callers_facts_are_left_as_they_were():
    stored, deleted = {"u1": row("u1")}, set()
    decide("run-1", "china", [Line(1, record="u1")], stored, deleted, clock=lambda: NOW)
    assert stored == {"u1": row("u1")} and deleted == set()
