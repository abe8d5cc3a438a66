"""The sign-in use case (identity.signin.service.SignIn), one outcome at a time, without servers."""

from __future__ import annotations

import pytest

from identity.keycloak.oidc import unverified_claims
from identity.legacy.models import MigrationState
from identity.signin.outcomes import Result

IP = "198.51.100.20"


def api(sign_in, username, password, client_id="mobile", ip=IP):
    return sign_in.with_password(client_id, None, username, password, ip)


def row_of(store, user):
    return store.get(user["kii_user_id"])



# --- the JSON API's path ---------------------------------------------------------------------------


def test_a_right_legacy_password_migrates_and_signs_in_with_the_ticket(sign_in, kii_user, keycloak, store, locks):
    user = kii_user()
    outcome = api(sign_in, user["username"], user["password"])
    assert (outcome.result, outcome.path) == (Result.SIGNED_IN, "first_login")
    assert unverified_claims(outcome.tokens["access_token"])["sub"] == user["keycloak_user_id"]
    assert keycloak.passwords[user["keycloak_user_id"]] == user["password"]
    # The grant used Keycloak's ticket, not a second check of the password.
    assert keycloak.grants[-1][1] is not None and not keycloak.tickets
    row = row_of(store, user)
    assert (row["state"], row["password_hash"]) == (MigrationState.migrated.value, None)
    assert locks.taken == [user["username"]]


def test_the_second_sign_in_is_keycloaks_alone(sign_in, kii_user, keycloak):
    user = kii_user()
    api(sign_in, user["username"], user["password"])
    outcome = api(sign_in, user["username"], user["password"])
    assert (outcome.result, outcome.path) == (Result.SIGNED_IN, "native")
    assert keycloak.grants[-1] == (user["username"], None)
    assert api(sign_in, user["username"], "not-it").result is Result.WRONG_PASSWORD


def test_email_and_phone_find_the_same_user_and_lock_the_same_name(sign_in, kii_user, locks):
    user = kii_user(email="kii.person@example.cn")
    assert api(sign_in, "Kii.Person@Example.CN", user["password"]).result is Result.SIGNED_IN
    assert locks.taken == [user["username"]]


def test_a_wrong_legacy_password_counts_for_the_user_and_the_address(sign_in, kii_user, store, throttle, sleeps):
    user = kii_user()
    assert api(sign_in, user["username"], "wrong-1").result is Result.WRONG_PASSWORD
    row = row_of(store, user)
    assert (row["state"], row["failed_attempts"]) == (MigrationState.pending.value, 1)
    assert row["password_hash"]
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 0.25  # the refusal waited out the floor


def test_the_threshold_locks_the_user_out_even_for_the_right_password(sign_in, kii_user, store):
    user = kii_user()
    results = [api(sign_in, user["username"], f"wrong-{n}", ip=f"203.0.113.{n}").result for n in range(3)]
    assert results == [Result.WRONG_PASSWORD, Result.WRONG_PASSWORD, Result.LOCKED]
    assert api(sign_in, user["username"], user["password"], ip="203.0.113.99").result is Result.LOCKED
    assert row_of(store, user)["state"] == MigrationState.pending.value


def test_an_address_with_too_many_failures_is_refused_before_any_check(sign_in, kii_user, keycloak):
    user = kii_user()
    for n in range(3):
        api(sign_in, f"nobody-{n}", "whatever")
    asked = len(keycloak.grants)
    assert api(sign_in, user["username"], user["password"]).result is Result.THROTTLED
    assert len(keycloak.grants) == asked and user["keycloak_user_id"] not in keycloak.passwords


def test_an_unknown_user_is_a_wrong_password_after_the_floor(sign_in, keycloak, sleeps):
    assert api(sign_in, "nobody-here", "whatever").result is Result.WRONG_PASSWORD
    assert keycloak.grants == [("nobody-here", None)]
    assert len(sleeps) == 1


@pytest.mark.parametrize("password", ["", "x" * 4097, "\ud800"])
def test_a_password_no_hash_can_take_is_a_wrong_one_and_never_sent(sign_in, kii_user, keycloak, store, password):
    user = kii_user()
    assert api(sign_in, user["username"], password).result is Result.WRONG_PASSWORD
    assert row_of(store, user)["failed_attempts"] == 1
    native = keycloak.add("native-user", password="Native-1")
    assert api(sign_in, "native-user", password).result is Result.WRONG_PASSWORD
    assert keycloak.grants[-1] == ("native-user", None) and native not in keycloak.locked


def test_a_username_no_text_can_be_names_no_one(sign_in, keycloak):
    assert api(sign_in, "\udcff", "whatever").result is Result.WRONG_PASSWORD
    assert keycloak.grants == []


def test_reset_required_and_disabled(sign_in, kii_user):
    reset = kii_user(state=MigrationState.reset_required)
    assert api(sign_in, reset["username"], "anything").result is Result.RESET_REQUIRED
    disabled = kii_user(disabled=True)
    # Told only after the right password: a wrong one is just wrong.
    assert api(sign_in, disabled["username"], "wrong").result is Result.WRONG_PASSWORD
    assert api(sign_in, disabled["username"], disabled["password"]).result is Result.DISABLED


def test_a_deleted_kii_user_has_no_hash_and_every_password_is_wrong(sign_in, kii_user):
    deleted = kii_user(state=MigrationState.reset_required, disabled=True)
    assert api(sign_in, deleted["username"], "anything").result is Result.WRONG_PASSWORD


def test_a_reset_at_keycloak_since_the_import_lets_keycloak_judge(sign_in, kii_user, keycloak, store):
    user = kii_user()
    keycloak.passwords[user["keycloak_user_id"]] = "Chosen-At-Keycloak-1"
    keycloak.reset_there.add(user["keycloak_user_id"])
    outcome = api(sign_in, user["username"], "Chosen-At-Keycloak-1")
    assert (outcome.result, outcome.path) == (Result.SIGNED_IN, "native")
    row = row_of(store, user)
    assert (row["state"], row["password_hash"]) == (MigrationState.migrated.value, None)
    # The old Kii password no longer works anywhere.
    assert api(sign_in, user["username"], user["password"]).result is Result.WRONG_PASSWORD


def test_keycloak_down_is_unavailable_and_the_hash_stays(sign_in, kii_user, keycloak, store):
    user = kii_user()
    keycloak.down = True
    assert api(sign_in, user["username"], user["password"]).result is Result.UNAVAILABLE
    row = row_of(store, user)
    assert (row["state"], row["failed_attempts"]) == (MigrationState.pending.value, 0) and row["password_hash"]
    keycloak.down = False
    assert api(sign_in, user["username"], user["password"]).result is Result.SIGNED_IN


def test_keycloaks_refusals_map_to_their_outcomes(sign_in, keycloak):
    keycloak.add("native-user", password="Native-1")
    assert api(sign_in, "native-user", "Native-1", client_id="other").result is Result.CLIENT_NOT_ALLOWED
    keycloak.busy = True
    assert api(sign_in, "native-user", "Native-1").result is Result.BUSY
    keycloak.busy = False
    keycloak.disabled.add(keycloak.ids["native-user"])
    assert api(sign_in, "native-user", "Native-1").result is Result.DISABLED
    keycloak.locked.add(keycloak.ids["native-user"])
    assert api(sign_in, "native-user", "Native-1").result is Result.LOCKED


def test_a_busy_lock_is_busy_not_wrong(sign_in, kii_user, locks, store):
    user = kii_user()
    locks.held.add(user["username"])
    assert api(sign_in, user["username"], user["password"]).result is Result.BUSY
    assert row_of(store, user)["failed_attempts"] == 0


# --- the bridge's path: the same use case, the same lock, the same state ------------------------------


def test_the_bridge_migrates_under_the_same_lock(sign_in, kii_user, keycloak, locks, store):
    user = kii_user()
    assert sign_in.check_legacy(user["keycloak_user_id"], user["password"], IP).result is Result.MIGRATED
    assert keycloak.passwords[user["keycloak_user_id"]] == user["password"]
    assert locks.taken == [user["username"]]
    assert row_of(store, user)["state"] == MigrationState.migrated.value
    assert sign_in.check_legacy(user["keycloak_user_id"], user["password"], IP).result is Result.KEYCLOAK_JUDGES


def test_a_lockout_earned_on_either_path_holds_on_the_other(sign_in, kii_user):
    by_api, by_bridge = kii_user(), kii_user()
    for n in range(3):
        api(sign_in, by_api["username"], f"wrong-{n}", ip=f"203.0.113.{n}")
        sign_in.check_legacy(by_bridge["keycloak_user_id"], f"wrong-{n}", IP)
    assert sign_in.check_legacy(by_api["keycloak_user_id"], by_api["password"], IP).result is Result.LOCKED
    assert api(sign_in, by_bridge["username"], by_bridge["password"], ip="203.0.113.50").result is Result.LOCKED


def test_the_bridge_does_not_count_against_the_address(sign_in, kii_user, throttle):
    user = kii_user()
    for n in range(3):
        sign_in.check_legacy(user["keycloak_user_id"], f"wrong-{n}", IP)
    assert not throttle.blocked(IP)


def test_the_bridge_knows_only_imported_users(sign_in, keycloak, locks):
    native = keycloak.add("native-user", password="Native-1")
    assert sign_in.check_legacy(native, "Native-1", IP).result is Result.NOT_A_LEGACY_USER
    assert locks.taken == []


# --- ChangePassword's check of the current password ------------------------------------------------


def test_the_current_password_is_checked_under_the_users_lock(sign_in, keycloak, locks, throttle):
    user_id = keycloak.add("native-user", password="Native-1")
    right = sign_in.verify_current_password("mobile", None, "native-user", user_id, "Native-1", IP)
    assert right.signed_in and right.tokens["refresh_token"] == f"refresh-{user_id}"
    assert locks.taken == ["native-user"]
    wrong = sign_in.verify_current_password("mobile", None, "native-user", user_id, "not-it", IP)
    assert wrong.result is Result.WRONG_PASSWORD
