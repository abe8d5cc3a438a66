"""The planner decides each line's outcome: one test per outcome, from facts held in memory.

No Keycloak, no database: `Facts` stands for what the store, the ledger and the audit trail say,
and earlier plans for the batches still in flight.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from identity.importer.plan import Facts, Plan, Planner, join_reasons, refusal_reason, settle_hash
from identity.importer.profile import keycloak_id
from identity.importer.reader import Line

REALM = "china"
NOW = datetime(2024, 1, 2, 3, 4, 5)


def profile(user_id: str = "u1", **fields) -> dict:
    record = {"userID": user_id, "loginName": f"Login-{user_id}", "emailAddress": f"{user_id}@example.com",
              "_hasPassword": True, "_modified": 100}
    record.update(fields)
    return {k: v for k, v in record.items() if v is not None}


def staged(user_id: str = "u1", line_no: int = 2, fingerprint: str = "f-new", problem: str | None = None) -> dict:
    return {"kii_user_id": user_id, "line_no": line_no, "password_hash": None if problem else "$hash$",
            "salt": None, "problem": problem, "fingerprint": fingerprint}


def stored(user_id: str = "u1", state: str = "pending", modified: int = 100, fingerprint: str = "f-old",
           username: str | None = None) -> dict:
    return {"kii_user_id": user_id, "keycloak_user_id": keycloak_id(REALM, user_id),
            "username": username or f"login-{user_id}", "email": f"{user_id}@example.com", "phone_number": None,
            "disabled": False, "kii_modified": modified, "state": state, "hash_fingerprint": fingerprint}


def plan(*records, facts: Facts | None = None, in_flight=(), done=frozenset(), bmp_only=False) -> Plan:
    lines = [record if isinstance(record, Line) else Line(n, record=record) for n, record in enumerate(records, 1)]
    planner = Planner("run-1", REALM, bmp_only=bmp_only, clock=lambda: NOW)
    return planner.plan(lines, lambda users: facts or Facts(), in_flight, done)


def outcomes(result: Plan, source: str = "profiles") -> list[tuple]:
    return [(r["line_no"], r["outcome"], r["reason"]) for r in result.records if r["source"] == source]


# --- imported ---------------------------------------------------------------------------------


def test_a_new_user_with_a_usable_hash_is_imported_pending_and_its_hash_stored():
    result = plan(profile(), facts=Facts(staged={"u1": staged()}))
    assert outcomes(result) == [(1, "imported", None)]
    assert outcomes(result, "hashes") == [(2, "stored", None)]
    (row,) = result.inserts
    assert row["state"] == "pending" and row["password_hash"] == "$hash$" and row["hash_fingerprint"] == "f-new"
    assert row["created_at"] == NOW and row["keycloak_user_id"] == keycloak_id(REALM, "u1")
    (user, rep), = result.creates
    assert rep["attributes"]["migration_state"] == ["pending"] and rep["username"] == "login-u1"
    profile_record = result.records[0]
    assert (profile_record["username"], profile_record["email"]) == ("login-u1", "u1@example.com")


def test_a_new_user_without_a_hash_row_is_imported_reset_required_with_a_warning():
    result = plan(profile())
    assert outcomes(result) == [(1, "imported", "missing_hash")]
    assert result.inserts[0]["state"] == "reset_required" and result.inserts[0]["password_hash"] is None
    assert outcomes(result, "hashes") == []


def test_an_unusable_hash_imports_the_user_reset_required_and_fails_the_hash_line():
    result = plan(profile(), facts=Facts(staged={"u1": staged(problem="malformed_hash")}))
    assert outcomes(result) == [(1, "imported", "unusable_hash")]
    assert outcomes(result, "hashes") == [(2, "failed", "malformed_hash")]
    assert result.inserts[0]["state"] == "reset_required"


def test_a_hash_for_a_user_without_password_fails_the_hash_line():
    result = plan(profile(_hasPassword=False), facts=Facts(staged={"u1": staged()}))
    assert outcomes(result) == [(1, "imported", None)]
    assert outcomes(result, "hashes") == [(2, "failed", "hash_for_user_without_password")]
    assert result.inserts[0]["password_hash"] is None


def test_warnings_add_up_on_the_line():
    result = plan(profile(phoneNumber="12", displayName="熊猫🐼"), bmp_only=True)
    assert outcomes(result) == [(1, "imported", "invalid_phone,missing_hash,non_bmp_replaced")]


def test_warnings_are_cut_at_whole_codes():
    assert join_reasons(["a" * 30, "b" * 17, "c"]) == "a" * 30 + "," + "b" * 17
    assert join_reasons([]) is None


# --- updated, unchanged, kept -------------------------------------------------------------------


def test_a_newer_profile_updates_the_user():
    result = plan(profile(_modified=200, emailAddress="new@example.com"),
                  facts=Facts(stored={"u1": stored(fingerprint="f-new")}, staged={"u1": staged()}))
    assert outcomes(result) == [(1, "updated", None)]
    assert outcomes(result, "hashes") == [(2, "unchanged", None)]
    (change,) = result.changes
    assert change["email"] == "new@example.com" and change["kii_modified"] == 200 and "state" not in change
    (user, rep), = result.updates
    assert rep["email"] == "new@example.com" and "migration_state" not in rep["attributes"]
    assert not result.inserts and not result.creates


def test_the_same_profile_and_hash_again_is_unchanged():
    result = plan(profile(), facts=Facts(stored={"u1": stored(fingerprint="f-new")}, staged={"u1": staged()}))
    assert outcomes(result) == [(1, "unchanged", None)]
    assert outcomes(result, "hashes") == [(2, "unchanged", None)]
    assert not (result.changes or result.updates or result.inserts)


def test_a_known_user_without_a_hash_row_is_not_warned():
    assert outcomes(plan(profile(), facts=Facts(stored={"u1": stored()}))) == [(1, "unchanged", None)]


def test_a_new_hash_replaces_a_pending_users_hash():
    result = plan(profile(), facts=Facts(stored={"u1": stored()}, staged={"u1": staged()}))
    assert outcomes(result) == [(1, "updated", None)]
    assert outcomes(result, "hashes") == [(2, "stored", None)]
    (change,) = result.changes
    assert change["hash_fingerprint"] == "f-new" and change["state"] == "pending"
    assert "state_changed_at" not in change and not result.updates  # the state did not move


def test_a_new_hash_makes_a_reset_required_user_pending_in_the_store_and_in_keycloak():
    result = plan(profile(), facts=Facts(stored={"u1": stored(state="reset_required")}, staged={"u1": staged()}))
    assert outcomes(result) == [(1, "updated", None)]
    (change,) = result.changes
    assert change["state"] == "pending" and change["state_changed_at"] == NOW
    (user, rep), = result.updates
    assert rep["attributes"]["migration_state"] == ["pending"]


def test_a_newer_profile_and_a_new_state_make_one_keycloak_update():
    result = plan(profile(_modified=200),
                  facts=Facts(stored={"u1": stored(state="reset_required")}, staged={"u1": staged()}))
    (user, rep), = result.updates
    assert rep["attributes"]["migration_state"] == ["pending"]


def test_a_migrated_user_keeps_the_password_they_signed_in_with():
    result = plan(profile(), facts=Facts(stored={"u1": stored(state="migrated")}, staged={"u1": staged()}))
    assert outcomes(result) == [(1, "unchanged", None)]
    assert outcomes(result, "hashes") == [(2, "kept", None)]
    assert not result.changes


def test_a_renamed_login_name_keeps_the_first_username_with_a_warning():
    result = plan(profile(_modified=200, loginName="Renamed"), facts=Facts(stored={"u1": stored()}))
    assert outcomes(result) == [(1, "updated", "login_name_changed")]
    assert result.changes[0]["username"] == "login-u1"
    assert result.updates[0][1]["username"] == "login-u1"
    assert result.records[0]["username"] == "login-u1"


def test_an_older_profile_is_left_alone():
    result = plan(profile(_modified=50, emailAddress="older@example.com"), facts=Facts(stored={"u1": stored()}))
    assert outcomes(result) == [(1, "unchanged", None)] and not result.changes


# --- failures the planner owns -------------------------------------------------------------------


def test_a_line_the_reader_refused_fails_under_its_reason():
    result = plan(Line(1, reason="not_json"), profile("u2"))
    assert outcomes(result) == [(1, "failed", "not_json"), (2, "imported", "missing_hash")]
    assert result.records[0]["kii_user_id"] is None


@pytest.mark.parametrize("record, reason, user_id", [
    ({"loginName": "x"}, "missing_user_id", None),
    (profile("bad id"), "invalid_user_id", None),
    (profile(loginName="has space"), "invalid_login_name", "u1"),
    (profile(loginName=None, emailAddress="nope"), "invalid_email", "u1"),
    (profile(_disabled="maybe"), "invalid_field_type", "u1"),
])
def test_a_record_the_profile_refuses_fails_under_its_reason(record, reason, user_id):
    result = plan(record)
    assert outcomes(result) == [(1, "failed", reason)]
    assert result.records[0]["kii_user_id"] == user_id and not result.creates


def test_a_user_id_twice_in_the_file_fails_the_second_line():
    result = plan(profile("u1"), profile("u1", loginName="other"))
    assert outcomes(result) == [(1, "imported", "missing_hash"), (2, "failed", "duplicate_user_id")]


def test_a_user_id_an_earlier_batch_committed_is_a_duplicate():
    assert outcomes(plan(profile(), facts=Facts(earlier={"u1"}))) == [(1, "failed", "duplicate_user_id")]


def test_a_user_id_in_a_batch_still_in_flight_is_a_duplicate():
    flying = plan(profile("u1"))
    result = plan(profile("u1", loginName="other", emailAddress=None), in_flight=[flying])
    assert outcomes(result) == [(1, "failed", "duplicate_user_id")]


def test_a_deleted_user_in_the_export_is_refused_with_its_hash():
    result = plan(profile(), facts=Facts(staged={"u1": staged()}, deleted={"u1"}))
    assert outcomes(result) == [(1, "failed", "deleted_user_in_export")]
    assert outcomes(result, "hashes") == [] and not result.creates  # its hash line is settled later


def test_a_login_name_differing_only_in_case_collides_within_the_file():
    result = plan(profile("u1", loginName="Alice"), profile("u2", loginName="ALICE", emailAddress=None))
    assert outcomes(result)[1] == (2, "failed", "login_name_case_collision")
    assert result.records[1]["username"] is None and len(result.creates) == 1


def test_an_email_the_store_holds_for_another_user_is_a_duplicate():
    facts = Facts(holders={"email": {"u1@example.com": "someone-else"}})
    assert outcomes(plan(profile(), facts=facts)) == [(1, "failed", "duplicate_email")]


def test_the_users_own_identifiers_in_the_store_are_no_collision():
    facts = Facts(stored={"u1": stored()}, holders={"email": {"u1@example.com": "u1"}, "username": {"login-u1": "u1"}})
    assert outcomes(plan(profile(), facts=facts)) == [(1, "unchanged", None)]


def test_a_phone_a_batch_in_flight_claimed_is_a_duplicate():
    flying = plan(profile("u1", phoneNumber="13812345678", country="CN"))
    result = plan(profile("u2", phoneNumber="+86 138 1234 5678", emailAddress=None), in_flight=[flying])
    assert outcomes(result) == [(1, "failed", "duplicate_phone")]


def test_a_username_from_a_user_id_collides_only_as_a_duplicate_user_id():
    facts = Facts(holders={"username": {"u1": "U1"}})
    result = plan(profile("u1", loginName=None), facts=facts)
    assert outcomes(result) == [(1, "failed", "duplicate_user_id")]


def test_a_failed_line_claims_nothing():
    result = plan(profile("u1", _disabled="maybe"), profile("u2", emailAddress="u1@example.com"))
    assert outcomes(result) == [(1, "failed", "invalid_field_type"), (2, "imported", "missing_hash")]


# --- resume ------------------------------------------------------------------------------------------


def test_a_resumed_run_skips_the_lines_already_in_the_ledger():
    asked = []

    def lookup(users):
        asked.extend(u.kii_user_id for u in users)
        return Facts(earlier={"u1"})

    planner = Planner("run-1", REALM, clock=lambda: NOW)
    lines = [Line(1, record=profile("u1")), Line(2, reason="not_json"), Line(3, record=profile("u3"))]
    result = planner.plan(lines, lookup, done={1, 2})
    assert outcomes(result) == [(3, "imported", "missing_hash")] and asked == ["u3"]
    assert planner.plan(lines[:2], lookup, done={1, 2}).records == []


def test_the_same_batch_planned_again_decides_the_same():
    facts = Facts(stored={"u2": stored("u2", state="reset_required")}, staged={"u1": staged(), "u2": staged("u2", 3)})
    first = plan(profile("u1"), profile("u2", _modified=300), facts=facts)
    again = plan(profile("u1"), profile("u2", _modified=300), facts=facts)
    assert first.records == again.records and first.changes == again.changes


# --- what the writes tell -------------------------------------------------------------------------


def test_a_new_user_keycloak_skipped_for_someone_else_fails_as_a_keycloak_conflict():
    result = plan(profile("u1"), profile("u2"), facts=Facts(staged={"u1": staged("u1", 5)}))
    result.refuse({keycloak_id(REALM, "u1")}, "keycloak_conflict")
    assert outcomes(result) == [(1, "failed", "keycloak_conflict"), (2, "imported", "missing_hash")]
    assert result.records[0]["username"] is None
    assert outcomes(result, "hashes") == []  # settled later as profile_failed
    assert [row["kii_user_id"] for row in result.inserts] == ["u2"]


def test_a_batch_the_store_refused_splits_per_user_and_a_refused_user_fails():
    result = plan(Line(1, reason="not_json"), profile("u1"), profile("u2"),
                  facts=Facts(staged={"u2": staged("u2", 9)}))
    rest, singles = result.per_user()
    assert outcomes(rest) == [(1, "failed", "not_json")]
    assert [outcomes(s) + outcomes(s, "hashes") for s in singles] == [
        [(2, "imported", "missing_hash")], [(3, "imported", None), (9, "stored", None)]]
    refused = singles[1].refused(refusal_reason("email"))
    assert outcomes(refused) == [(3, "failed", "duplicate_email")] and outcomes(refused, "hashes") == []
    assert not (refused.inserts or refused.changes) and refused.records[0]["email"] is None


@pytest.mark.parametrize("column, reason", [("username", "login_name_case_collision"),
                                            ("email", "duplicate_email"), ("phone_number", "duplicate_phone"),
                                            ("kii_user_id", "duplicate_user_id")])
def test_a_refused_unique_key_names_its_reason(column, reason):
    assert refusal_reason(column) == reason


# --- hash lines no profile took -----------------------------------------------------------------------


@pytest.mark.parametrize("user_id, problem, expected", [
    ("gone", None, ("failed", "deleted_user_in_export")),
    ("failed-profile", None, ("failed", "profile_failed")),
    ("old", None, ("unused", "user_not_in_export")),
    ("old", "malformed_hash", ("failed", "malformed_hash")),
    ("nobody", None, ("failed", "hash_for_unknown_user")),
])
def test_a_hash_line_no_profile_took(user_id, problem, expected):
    in_store, in_ledger, deleted = {"old", "gone"}, {"failed-profile", "gone"}, {"gone"}
    assert settle_hash(user_id, problem, in_store, in_ledger, deleted) == expected
