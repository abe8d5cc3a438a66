"""The SRP sign-in use case (identity.signin.srp.SrpSignIn) with pycognito's own client math, no servers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pycognito.aws_srp import AWSSRP

from identity import srp
from identity.keycloak.oidc import unverified_claims
from identity.legacy.models import MigrationState
from identity.signin.outcomes import Result
from identity.signin.srp import Challenge, SrpSignIn
from tests.signin.conftest import POOL_ID

IP = "198.51.100.30"


@pytest.fixture
def srp_sign_in(sign_in, verifiers, keycloak, clock):
    return SrpSignIn(sign_in, verifiers, keycloak, srp.SecretBlocks(b"s" * 32), stand_in_key=b"k" * 32,
                     tolerance=timedelta(minutes=5), challenge_ttl=timedelta(minutes=3), now=clock)


def exchange(srp_sign_in, username, password, client_id="mobile", ip=IP):
    """pycognito's USER_SRP_AUTH, answered by the use case: (challenge parameters, its answer, outcome)."""
    app = AWSSRP(username=username, password=password, pool_id=POOL_ID, client_id=client_id, client=object())
    auth = app.get_auth_params()
    challenge = srp_sign_in.challenge(client_id, username, srp.parse_public_value(auth["SRP_A"]), ip)
    assert isinstance(challenge, Challenge), challenge
    answer = app.process_challenge(challenge.parameters, auth)
    outcome = srp_sign_in.answer(client_id, None, answer["USERNAME"], answer["PASSWORD_CLAIM_SECRET_BLOCK"],
                                 answer["PASSWORD_CLAIM_SIGNATURE"], answer["TIMESTAMP"], ip)
    return challenge.parameters, answer, outcome


def native(sign_in, keycloak, username="native-user", password="Native-Pass-1"):
    """A Keycloak user whose password passed through the service once (its verifier kept)."""
    user_id = keycloak.add(username, password=password)
    assert sign_in.with_password("mobile", None, username, password, IP).signed_in
    return user_id


def test_a_password_sign_in_keeps_a_verifier_and_srp_then_signs_in(sign_in, srp_sign_in, keycloak, verifiers):
    user_id = native(sign_in, keycloak)
    row = verifiers.get(user_id)
    assert row["credential_id"] == keycloak.credentials[user_id][0] and row["username"] == "native-user"
    parameters, answer, outcome = exchange(srp_sign_in, "native-user", "Native-Pass-1")
    assert parameters["USER_ID_FOR_SRP"] == parameters["USERNAME"] == user_id
    assert (outcome.result, outcome.path) == (Result.SIGNED_IN, "srp")
    assert unverified_claims(outcome.tokens["access_token"])["sub"] == user_id
    # The tokens came with the provider's ticket: the password was never sent to Keycloak.
    assert keycloak.grants[-1][0] == "native-user" and keycloak.grants[-1][1] is not None


def test_a_second_password_sign_in_writes_nothing(sign_in, keycloak, verifiers):
    user_id = native(sign_in, keycloak)
    before = verifiers.get(user_id)
    assert sign_in.with_password("mobile", None, "native-user", "Native-Pass-1", IP).signed_in
    assert verifiers.get(user_id) == before


def test_a_wrong_password_over_srp_counts_where_every_wrong_password_counts(sign_in, srp_sign_in, keycloak,
                                                                           throttle):
    user_id = native(sign_in, keycloak)
    _, _, outcome = exchange(srp_sign_in, "native-user", "not-the-password")
    assert outcome.result is Result.WRONG_PASSWORD
    assert keycloak.failed[user_id] == 1
    assert throttle.blocked(IP) is False
    for n in range(2):
        exchange(srp_sign_in, "native-user", "not-the-password", ip=f"203.0.113.{n}")
    # Locked by Keycloak's brute-force detection: the right password gets no tokens, on either path.
    assert exchange(srp_sign_in, "native-user", "Native-Pass-1", ip="203.0.113.9")[2].result is Result.LOCKED
    assert sign_in.with_password("mobile", None, "native-user", "Native-Pass-1", "203.0.113.8").result \
        is Result.LOCKED


def test_a_replayed_answer_is_refused(sign_in, srp_sign_in, keycloak):
    native(sign_in, keycloak)
    _, answer, outcome = exchange(srp_sign_in, "native-user", "Native-Pass-1")
    assert outcome.signed_in
    again = srp_sign_in.answer("mobile", None, answer["USERNAME"], answer["PASSWORD_CLAIM_SECRET_BLOCK"],
                               answer["PASSWORD_CLAIM_SIGNATURE"], answer["TIMESTAMP"], IP)
    assert again.result is Result.WRONG_PASSWORD


def test_a_timestamp_outside_the_tolerance_is_refused(sign_in, srp_sign_in, keycloak, clock):
    user_id = native(sign_in, keycloak)
    app = AWSSRP(username="native-user", password="Native-Pass-1", pool_id=POOL_ID, client_id="mobile",
                 client=object())
    auth = app.get_auth_params()
    challenge = srp_sign_in.challenge("mobile", "native-user", srp.parse_public_value(auth["SRP_A"]), IP)
    answer = app.process_challenge(challenge.parameters, auth)
    clock.now += timedelta(minutes=6)  # past the challenge's life and the timestamp's tolerance
    outcome = srp_sign_in.answer("mobile", None, answer["USERNAME"], answer["PASSWORD_CLAIM_SECRET_BLOCK"],
                                 answer["PASSWORD_CLAIM_SIGNATURE"], answer["TIMESTAMP"], IP)
    assert outcome.result is Result.WRONG_PASSWORD and user_id not in keycloak.failed


def test_an_answer_for_another_client_or_user_is_refused(sign_in, srp_sign_in, keycloak):
    native(sign_in, keycloak)
    other = native(sign_in, keycloak, "other-user", "Other-Pass-1")
    app = AWSSRP(username="native-user", password="Native-Pass-1", pool_id=POOL_ID, client_id="mobile",
                 client=object())
    auth = app.get_auth_params()
    challenge = srp_sign_in.challenge("mobile", "native-user", srp.parse_public_value(auth["SRP_A"]), IP)
    answer = app.process_challenge(challenge.parameters, auth)
    block, signature, stamp = (answer["PASSWORD_CLAIM_SECRET_BLOCK"], answer["PASSWORD_CLAIM_SIGNATURE"],
                               answer["TIMESTAMP"])
    assert srp_sign_in.answer("web", None, answer["USERNAME"], block, signature, stamp, IP).result \
        is Result.WRONG_PASSWORD
    assert srp_sign_in.answer("mobile", None, other, block, signature, stamp, IP).result is Result.WRONG_PASSWORD
    assert not keycloak.failed


def test_a_password_set_at_keycloak_since_makes_the_verifier_stale(sign_in, srp_sign_in, keycloak):
    user_id = native(sign_in, keycloak)
    keycloak.set_password(user_id, "Chosen-At-Keycloak-1")   # the login page's reset, say
    _, _, outcome = exchange(srp_sign_in, "native-user", "Chosen-At-Keycloak-1")
    assert outcome.result is Result.WRONG_PASSWORD
    assert user_id not in keycloak.failed  # not judged: no usable verifier
    # The app's fallback, USER_PASSWORD_AUTH, works and brings the verifier up to date.
    assert sign_in.with_password("mobile", None, "native-user", "Chosen-At-Keycloak-1", IP).signed_in
    assert exchange(srp_sign_in, "native-user", "Chosen-At-Keycloak-1")[2].signed_in


def test_a_kii_user_not_migrated_gets_a_stand_in_challenge_then_migrates_by_password(sign_in, srp_sign_in,
                                                                                  kii_user, store):
    user = kii_user()
    first, _, outcome = exchange(srp_sign_in, user["username"], user["password"])
    assert outcome.result is Result.WRONG_PASSWORD
    again, _, _ = exchange(srp_sign_in, user["username"], user["password"])
    # The same stand-in salt and user id for the name each time, and not the user's Keycloak id.
    assert (first["SALT"], first["USER_ID_FOR_SRP"]) == (again["SALT"], again["USER_ID_FOR_SRP"])
    assert first["USER_ID_FOR_SRP"] != user["keycloak_user_id"] and first["SRP_B"] != again["SRP_B"]
    assert store.get(user["kii_user_id"])["failed_attempts"] == 0
    assert sign_in.with_password("mobile", None, user["username"], user["password"], IP).signed_in
    assert store.get(user["kii_user_id"])["state"] == MigrationState.migrated.value
    assert exchange(srp_sign_in, user["username"], user["password"])[2].signed_in


def test_the_bridge_migration_keeps_a_verifier(sign_in, srp_sign_in, kii_user):
    user = kii_user()
    assert sign_in.check_legacy(user["keycloak_user_id"], user["password"], IP).result is Result.MIGRATED
    assert exchange(srp_sign_in, user["username"], user["password"])[2].signed_in


def test_an_unknown_name_gets_a_challenge_of_the_same_shape(sign_in, srp_sign_in, keycloak):
    native(sign_in, keycloak)
    known, _, _ = exchange(srp_sign_in, "native-user", "Native-Pass-1")
    unknown, _, outcome = exchange(srp_sign_in, "nobody-at-all", "whatever")
    assert outcome.result is Result.WRONG_PASSWORD
    assert sorted(known) == sorted(unknown)
    assert len(known["USER_ID_FOR_SRP"]) == len(unknown["USER_ID_FOR_SRP"]) == 36
    assert len(known["SECRET_BLOCK"]) == len(unknown["SECRET_BLOCK"])
    # A salt is written as a real one is, whose length varies with its leading byte (padded hex).
    for salt in (known["SALT"], unknown["SALT"]):
        assert salt == srp.pad_hex(int(salt, 16))


def test_a_blocked_address_gets_no_challenge(sign_in, srp_sign_in, keycloak, throttle):
    native(sign_in, keycloak)
    for _ in range(3):
        throttle.failure(IP)
    assert srp_sign_in.challenge("mobile", "native-user", 12345, IP) == srp_sign_in.challenge(
        "mobile", "native-user", 12345, IP)
    assert srp_sign_in.challenge("mobile", "native-user", 12345, IP).result is Result.THROTTLED


def test_a_password_keycloak_validates_is_pushed_and_srp_works_without_a_password_sign_in(
        srp_sign_in, keycloak, verifiers):
    user_id = keycloak.add("console-reset")
    # The provider tells the bridge as Keycloak validates the password, just before it stores it.
    verifiers.pushed(user_id, "console-reset", "Set-In-Console-1")
    keycloak.set_password(user_id, "Set-In-Console-1")
    assert exchange(srp_sign_in, "console-reset", "Set-In-Console-1")[2].signed_in


def test_a_pushed_password_keycloak_never_stored_is_not_used(srp_sign_in, keycloak, verifiers):
    user_id = keycloak.add("kept-old", password="Old-Password-1")
    old_id, created = keycloak.credentials[user_id]
    keycloak.credentials[user_id] = (old_id, created - 120_000)   # the password in force, two minutes old
    verifiers.pushed(user_id, "kept-old", "Refused-Later-1")   # validated, then its transaction failed
    _, _, outcome = exchange(srp_sign_in, "kept-old", "Refused-Later-1")
    assert outcome.result is Result.WRONG_PASSWORD and user_id not in keycloak.failed
