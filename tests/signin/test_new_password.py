"""NEW_PASSWORD_REQUIRED (identity.signin.new_password.NewPassword): a temporary password, then a new one."""

from __future__ import annotations

from datetime import timedelta

import pytest

from identity.signin.challenges import ChallengeSessions
from identity.signin.new_password import NewPassword
from identity.signin.outcomes import Result

IP = "198.51.100.40"


@pytest.fixture
def new_password(sign_in, verifiers, keycloak, clock):
    return NewPassword(sign_in, ChallengeSessions(b"s" * 32, timedelta(minutes=3)), verifiers, keycloak, now=clock)


@pytest.fixture
def reset_by_support(keycloak):
    user_id = keycloak.add("support-reset", password="Temporary-1")
    keycloak.temporary.add(user_id)   # the console's "Reset password", Temporary on
    return user_id


def challenged(sign_in, new_password, password="Temporary-1", client_id="mobile"):
    outcome = sign_in.with_password(client_id, None, "support-reset", password, IP)
    assert outcome.result is Result.NEW_PASSWORD_REQUIRED
    return outcome, new_password.session_for(outcome, client_id)


def test_the_right_temporary_password_asks_for_a_new_one_then_signs_in(sign_in, new_password, keycloak,
                                                                       reset_by_support, verifiers):
    outcome, session = challenged(sign_in, new_password)
    assert (outcome.user_id, outcome.username) == (reset_by_support, "support-reset")
    done = new_password.answer("mobile", None, session, "Chosen-Anew-1", IP)
    assert (done.result, done.path) == (Result.SIGNED_IN, "new_password")
    assert keycloak.passwords[reset_by_support] == "Chosen-Anew-1" and reset_by_support not in keycloak.temporary
    assert keycloak.grants[-1][1] is not None   # the tokens came with a ticket, not the password again
    assert verifiers.get(reset_by_support) is not None   # SRP works from now on
    assert sign_in.with_password("mobile", None, "support-reset", "Chosen-Anew-1", IP).signed_in


def test_a_wrong_temporary_password_is_a_wrong_password(sign_in, reset_by_support):
    assert sign_in.with_password("mobile", None, "support-reset", "not-it", IP).result is Result.WRONG_PASSWORD


def test_the_session_answers_once(sign_in, new_password, reset_by_support):
    _, session = challenged(sign_in, new_password)
    assert new_password.answer("mobile", None, session, "Chosen-Anew-1", IP).signed_in
    assert new_password.answer("mobile", None, session, "Chosen-Again-2", IP).result is Result.INVALID_SESSION


def test_a_refused_password_leaves_the_session_good_for_a_better_one(sign_in, new_password, reset_by_support):
    _, session = challenged(sign_in, new_password)
    refused = new_password.answer("mobile", None, session, "short", IP)
    assert (refused.result, refused.detail) == (Result.PASSWORD_REFUSED, "invalidPasswordMinLengthMessage")
    assert new_password.answer("mobile", None, session, "Long-Enough-1", IP).signed_in


def test_the_session_is_bound_to_its_client_and_expires(sign_in, new_password, reset_by_support, clock):
    _, session = challenged(sign_in, new_password)
    assert new_password.answer("web", None, session, "Chosen-Anew-1", IP).result is Result.INVALID_SESSION
    assert new_password.answer("mobile", None, session[:-4] + "AAAA", "Chosen-Anew-1", IP).result \
        is Result.INVALID_SESSION
    assert new_password.answer("mobile", None, "not a session", "Chosen-Anew-1", IP).result \
        is Result.INVALID_SESSION
    # Each was counted against the address, as a wrong password is: the fourth is refused before any check.
    assert new_password.answer("mobile", None, session, "Chosen-Anew-1", IP).result is Result.THROTTLED
    clock.now += timedelta(minutes=4)
    assert new_password.answer("mobile", None, session, "Chosen-Anew-1", "203.0.113.77").result \
        is Result.INVALID_SESSION
