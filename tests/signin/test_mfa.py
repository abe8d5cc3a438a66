"""Authenticator-app MFA (identity.signin.mfa.SoftwareTokenMfa): SOFTWARE_TOKEN_MFA, MFA_SETUP, and a
signed-in user's app, against the in-memory Keycloak stand-in of tests/signin/conftest.py, a unit test of the use case by
design: the same flows run against the real Keycloak, its provider and MariaDB in
tests/cognito/test_mfa.py, tests/clients/test_amplify.py and tests/keycloak/test_login_otp.py."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from identity.signin.challenges import ChallengeSessions
from identity.signin.mfa import NoPendingSecret, NotSetUp, SoftwareTokenMfa
from identity.signin.outcomes import Result
from identity.signin.software_tokens import PendingSecrets, secret_code
from identity.signin.srp import SrpSignIn
from identity.srp import SecretBlocks

IP = "198.51.100.50"


@pytest.fixture
def mfa(sign_in, verifiers, keycloak, engine, clock):
    return SoftwareTokenMfa(sign_in, ChallengeSessions(b"s" * 32, timedelta(minutes=3)), verifiers,
                            PendingSecrets(engine, b"p" * 32), keycloak, now=clock)


@pytest.fixture
def with_app(keycloak):
    user_id = keycloak.add("with-app", password="With-App-Pass-1")
    keycloak.apps[user_id] = ("A" * 20, "Pixel")
    return user_id


def challenged(sign_in, mfa, username="with-app", password="With-App-Pass-1", client_id="mobile"):
    outcome = sign_in.with_password(client_id, None, username, password, IP)
    assert outcome.result is Result.MFA_REQUIRED
    return outcome, mfa.session_for(outcome, client_id)


def test_the_right_password_asks_for_the_code_and_the_code_signs_in(sign_in, mfa, keycloak, with_app, verifiers):
    outcome, session = challenged(sign_in, mfa)
    assert (outcome.user_id, outcome.username) == (with_app, "with-app")
    assert verifiers.get(with_app) is not None   # the password was right: SRP works next time
    assert mfa.device_name(with_app) == "Pixel"
    done = mfa.answer("mobile", None, session, keycloak.right_code("A" * 20), IP)
    assert (done.result, done.path) == (Result.SIGNED_IN, "software_token_mfa")
    assert keycloak.grants[-1][1] is not None   # with a ticket: the password is not sent again


def test_a_wrong_code_is_counted_and_the_session_takes_another_try(sign_in, mfa, keycloak, with_app, throttle):
    _, session = challenged(sign_in, mfa)
    assert mfa.answer("mobile", None, session, "000000", IP).result is Result.CODE_MISMATCH
    assert keycloak.failed[with_app] == 1
    assert mfa.answer("mobile", None, session, keycloak.right_code("A" * 20), IP).signed_in
    # Answered once: spent, whatever code comes next.
    assert mfa.answer("mobile", None, session, keycloak.right_code("A" * 20), IP).result is Result.INVALID_SESSION


def test_a_wrong_password_gets_no_challenge(sign_in, mfa, with_app):
    assert sign_in.with_password("mobile", None, "with-app", "Not-It-1", IP).result is Result.WRONG_PASSWORD


@pytest.mark.parametrize("client_id, challenge_session", [("other", False), ("mobile", True)])
def test_a_session_answers_its_own_client_and_challenge(sign_in, mfa, keycloak, with_app, client_id,
                                                        challenge_session):
    _, session = challenged(sign_in, mfa)
    if challenge_session:  # the MFA challenge's Session is no MFA_SETUP one
        assert mfa.finish_setup("mobile", None, session, IP).result is Result.INVALID_SESSION
    else:
        assert mfa.answer(client_id, None, session, keycloak.right_code("A" * 20), IP).result is Result.INVALID_SESSION


def test_an_expired_session_is_refused(sign_in, mfa, keycloak, with_app, clock):
    _, session = challenged(sign_in, mfa)
    clock.now += timedelta(minutes=4)
    assert mfa.answer("mobile", None, session, keycloak.right_code("A" * 20), IP).result is Result.INVALID_SESSION


def test_srp_then_the_code(sign_in, mfa, keycloak, verifiers, with_app, clock):
    from tests.signin.test_srp import exchange

    sign_in.with_password("mobile", None, "with-app", "With-App-Pass-1", IP)   # keeps the verifier
    srp_sign_in = SrpSignIn(sign_in, verifiers, keycloak, SecretBlocks(b"k" * 32), stand_in_key=b"z" * 32, now=clock)
    outcome = exchange(srp_sign_in, "with-app", "With-App-Pass-1")[2]
    assert (outcome.result, outcome.user_id) == (Result.MFA_REQUIRED, with_app)
    session = mfa.session_for(outcome, "mobile")
    assert mfa.answer("mobile", None, session, keycloak.right_code("A" * 20), IP).signed_in


def test_mfa_setup_asked_by_the_console(sign_in, mfa, keycloak):
    user_id = keycloak.add("asked", password="Asked-Pass-1")
    keycloak.setup_asked.add(user_id)
    outcome = sign_in.with_password("mobile", None, "asked", "Asked-Pass-1", IP)
    assert outcome.result is Result.MFA_SETUP
    session = mfa.session_for(outcome, "mobile")
    code_text, associated = mfa.associate_in_sign_in(session, IP)
    secret = base64.b32decode(code_text + "=" * (-len(code_text) % 8)).decode()
    assert secret_code(secret) == code_text and len(secret) == 20
    assert mfa.verify_in_sign_in(associated, "000000", None, IP).result is Result.CODE_MISMATCH
    assert user_id not in keycloak.apps
    verified = mfa.verify_in_sign_in(associated, keycloak.right_code(secret), "Phone", IP)
    assert isinstance(verified, str) and keycloak.apps[user_id] == (secret, "Phone")
    # The setup Session of another step does not end the sign-in; the verified one does, once.
    elsewhere = "203.0.113.9"   # (three failures from one address would throttle it)
    assert mfa.finish_setup("mobile", None, associated, elsewhere).result is Result.INVALID_SESSION
    assert mfa.finish_setup("other", None, verified, elsewhere).result is Result.INVALID_SESSION
    done = mfa.finish_setup("mobile", None, verified, IP)
    assert (done.result, done.path) == (Result.SIGNED_IN, "mfa_setup")
    assert mfa.finish_setup("mobile", None, verified, IP).result is Result.INVALID_SESSION
    # From now on the code is asked.
    assert sign_in.with_password("mobile", None, "asked", "Asked-Pass-1", IP).result is Result.MFA_REQUIRED


def test_a_signed_in_users_app(mfa, keycloak, engine):
    user_id = keycloak.add("settings", password="Settings-Pass-1")
    with pytest.raises(NoPendingSecret):
        mfa.verify(user_id, "123456", None, IP)
    code_text = mfa.associate(user_id)
    secret = base64.b32decode(code_text + "=" * (-len(code_text) % 8)).decode()
    # The table holds it sealed, never as given.
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("select sealed_secret from pending_software_tokens").scalar_one()
    assert secret not in stored and code_text not in stored
    assert mfa.verify(user_id, "000000", None, IP).result is Result.CODE_MISMATCH
    assert mfa.verify(user_id, keycloak.right_code(secret), "Tablet", IP) is None
    assert mfa.enabled(user_id) and keycloak.apps[user_id] == (secret, "Tablet")
    with pytest.raises(NoPendingSecret):  # used up
        mfa.verify(user_id, keycloak.right_code(secret), None, IP)
    mfa.set_preference(user_id, True)
    mfa.set_preference(user_id, False, IP)
    assert not mfa.enabled(user_id)
    from identity import audit
    trail = [(e["event"], e["path"], e["client"]) for e in audit.query(engine, user=user_id)]
    assert trail == [("mfa_app_set", "settings", IP), ("mfa_app_removed", "settings", IP)]
    with pytest.raises(NotSetUp):
        mfa.set_preference(user_id, True)


def test_a_pending_secret_expires_and_is_bound_to_its_user(mfa, keycloak, engine):
    from identity.legacy.models import utcnow

    first = keycloak.add("first", password="First-Pass-1")
    mfa.associate(first)
    assert mfa.pending.get(first) is not None
    assert mfa.pending.get(first, now=utcnow() + timedelta(minutes=16)) is None
    # Moved to another user's row, the sealed secret does not open.
    with engine.begin() as conn:
        conn.exec_driver_sql("update pending_software_tokens set keycloak_user_id = 'someone-else'")
    assert mfa.pending.get("someone-else") is None


def test_too_many_wrong_codes_from_one_address_are_throttled(sign_in, mfa, with_app):
    _, session = challenged(sign_in, mfa)
    for _ in range(3):
        assert mfa.answer("mobile", None, session, "000000", IP).result is Result.CODE_MISMATCH
    assert mfa.answer("mobile", None, session, "000000", IP).result is Result.THROTTLED
