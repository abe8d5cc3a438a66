"""USER_SRP_AUTH and PASSWORD_VERIFIER end to end: pycognito and boto3, unchanged, against the service,
with the real Keycloak (its provider mints the ticket, counts the wrong passwords) and the real store."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from pycognito.aws_srp import AWSSRP

from identity.db import db
from identity.signin.models import SrpVerifier
from tests.cognito.test_sign_in import error_of, sign_in, verify_like_cognito
from tests.conftest import TEST_REALM
from tests.used_secrets import remember

POOL_ID = "cn-north-1_china"


def pycognito_srp(cognito, username: str, password: str) -> dict:
    """pycognito's SRP client, unchanged (AWSSRP.authenticate_user: InitiateAuth, then the answer), on a
    boto3 client pointed at the service."""
    return AWSSRP(username=username, password=password, pool_id=POOL_ID, client_id="mobile",
                  client=cognito).authenticate_user()


def srp_exchange(cognito, username: str, password: str) -> tuple[dict, dict]:
    """(the challenge's answer pycognito sends, and the service's answer to it): USER_SRP_AUTH by hand."""
    app = AWSSRP(username=username, password=password, pool_id=POOL_ID, client_id="mobile", client=cognito)
    auth = app.get_auth_params()
    challenge = cognito.initiate_auth(AuthFlow="USER_SRP_AUTH", ClientId="mobile", AuthParameters=auth)
    assert challenge["ChallengeName"] == "PASSWORD_VERIFIER"
    answer = app.process_challenge(challenge["ChallengeParameters"], auth)
    return answer, challenge["ChallengeParameters"]


def respond(cognito, answer: dict) -> dict:
    return cognito.respond_to_auth_challenge(ClientId="mobile", ChallengeName="PASSWORD_VERIFIER",
                                             ChallengeResponses=answer)


def failures(master_admin, user_id: str) -> int:
    master_admin.change_current_realm(TEST_REALM)
    return master_admin.connection.raw_get(
        f"admin/realms/{TEST_REALM}/attack-detection/brute-force/users/{user_id}").json()["numFailures"]


def keep_verifier_secret(live_service, user_id: str) -> None:
    """The stored verifier is a secret like a hash: the session's scan looks for it in every log and output."""
    with live_service["app"].app_context():
        row = db.session.execute(sa.select(SrpVerifier).where(SrpVerifier.keycloak_user_id == user_id)).scalar_one()
        remember(row.verifier)


def test_pycognito_signs_in_a_migrated_kii_user_over_srp(live_service, cognito, legacy_user):
    user = legacy_user(password="Kii-Srp-Pass-1")
    # Not migrated yet: no verifier, so SRP is refused as a wrong password; the password flow migrates.
    assert error_of(lambda: pycognito_srp(cognito, user["username"], "Kii-Srp-Pass-1")) == \
        ("NotAuthorizedException", "Incorrect username or password.")
    assert sign_in(cognito, user["username"], "Kii-Srp-Pass-1")["AuthenticationResult"]["AccessToken"]
    keep_verifier_secret(live_service, user["id"])

    tokens = pycognito_srp(cognito, user["username"], "Kii-Srp-Pass-1")["AuthenticationResult"]
    claims = verify_like_cognito(tokens["AccessToken"], live_service, "access")
    assert claims["sub"] == user["id"] and claims["username"] == user["username"]
    assert verify_like_cognito(tokens["IdToken"], live_service, "id")["sub"] == user["id"]
    assert tokens["RefreshToken"]


def test_a_wrong_password_over_srp_is_counted_by_keycloak(live_service, cognito, kc_user, master_admin):
    user = kc_user(password="Native-Srp-1")
    sign_in(cognito, user["username"], "Native-Srp-1")
    before = failures(master_admin, user["id"])
    answer, _ = srp_exchange(cognito, user["username"], "not-the-password")
    assert error_of(lambda: respond(cognito, answer)) == ("NotAuthorizedException", "Incorrect username or password.")
    # Keycloak books a failure after it answers (asynchronously, as for its own logins).
    deadline = time.monotonic() + 10
    while failures(master_admin, user["id"]) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert failures(master_admin, user["id"]) == before + 1


def test_an_answer_is_taken_once(live_service, cognito, kc_user):
    user = kc_user(password="Native-Srp-2")
    sign_in(cognito, user["username"], "Native-Srp-2")
    answer, parameters = srp_exchange(cognito, user["username"], "Native-Srp-2")
    assert parameters["USER_ID_FOR_SRP"] == user["id"]
    tokens = respond(cognito, answer)["AuthenticationResult"]
    assert verify_like_cognito(tokens["AccessToken"], live_service, "access")["sub"] == user["id"]
    assert error_of(lambda: respond(cognito, answer))[0] == "NotAuthorizedException"


def test_a_password_support_sets_in_keycloak_works_over_srp_at_once(live_service, cognito, kc_user, master_admin):
    """Keycloak's provider hands every password it validates to the bridge (the srpVerifier policy): a
    password the service never saw works over SRP, and the old one no longer does."""
    user = kc_user(password="Native-Srp-3")
    sign_in(cognito, user["username"], "Native-Srp-3")
    master_admin.change_current_realm(TEST_REALM)
    master_admin.set_user_password(user["id"], "Set-By-Support-3", temporary=False)
    remember("Set-By-Support-3")
    answer, _ = srp_exchange(cognito, user["username"], "Set-By-Support-3")
    assert respond(cognito, answer)["AuthenticationResult"]["AccessToken"]
    keep_verifier_secret(live_service, user["id"])
    answer, _ = srp_exchange(cognito, user["username"], "Native-Srp-3")
    assert error_of(lambda: respond(cognito, answer))[0] == "NotAuthorizedException"


def test_a_temporary_password_over_srp_gets_the_new_password_challenge(live_service, cognito, kc_user,
                                                                       master_admin):
    user = kc_user(password="Native-Srp-5")
    master_admin.change_current_realm(TEST_REALM)
    master_admin.set_user_password(user["id"], "Temporary-Srp-5", temporary=True)
    remember("Temporary-Srp-5", "After-Srp-Temp-5")
    answer, _ = srp_exchange(cognito, user["username"], "Temporary-Srp-5")
    challenge = respond(cognito, answer)
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED" and challenge["Session"]
    tokens = cognito.respond_to_auth_challenge(
        ClientId="mobile", ChallengeName="NEW_PASSWORD_REQUIRED", Session=challenge["Session"],
        ChallengeResponses={"USERNAME": user["username"], "NEW_PASSWORD": "After-Srp-Temp-5"})["AuthenticationResult"]
    assert verify_like_cognito(tokens["AccessToken"], live_service, "access")["sub"] == user["id"]


def test_a_malformed_srp_a_and_a_missing_answer_are_invalid_parameters(cognito):
    for srp_a in ("0", "zz", "f" * 10000):
        assert error_of(lambda: cognito.initiate_auth(
            AuthFlow="USER_SRP_AUTH", ClientId="mobile", AuthParameters={"USERNAME": "someone", "SRP_A": srp_a}))[0] \
            == "InvalidParameterException"
    assert error_of(lambda: cognito.respond_to_auth_challenge(
        ClientId="mobile", ChallengeName="PASSWORD_VERIFIER", ChallengeResponses={"USERNAME": "someone"})) == \
        ("InvalidParameterException", "Missing required parameter PASSWORD_CLAIM_SECRET_BLOCK")
    assert error_of(lambda: cognito.respond_to_auth_challenge(
        ClientId="mobile", ChallengeName="SMS_MFA", ChallengeResponses={"USERNAME": "someone"}))[0] == \
        "InvalidParameterException"


def test_get_tokens_from_refresh_token(live_service, cognito, kc_user):
    user = kc_user(password="Native-Srp-4")
    tokens = sign_in(cognito, user["username"], "Native-Srp-4")["AuthenticationResult"]
    fresh = cognito.get_tokens_from_refresh_token(RefreshToken=tokens["RefreshToken"], ClientId="mobile")
    result = fresh["AuthenticationResult"]
    assert verify_like_cognito(result["AccessToken"], live_service, "access")["sub"] == user["id"]
    assert result["ExpiresIn"] == 3600 and result["TokenType"] == "Bearer" and "RefreshToken" not in result
    assert error_of(lambda: cognito.get_tokens_from_refresh_token(RefreshToken="not-a-token", ClientId="mobile")) \
        == ("NotAuthorizedException", "Refresh Token has been revoked")


@pytest.mark.parametrize("client_id", ["no-such-client"])
def test_an_unknown_client_is_refused_before_anything(cognito, client_id):
    assert error_of(lambda: cognito.initiate_auth(
        AuthFlow="USER_SRP_AUTH", ClientId=client_id, AuthParameters={"USERNAME": "a", "SRP_A": "abc"}))[0] == \
        "ResourceNotFoundException"


def test_new_password_required_after_a_temporary_password(live_service, cognito, kc_user, master_admin):
    """The console's "Reset password" with Temporary on: the right temporary password gets the
    NEW_PASSWORD_REQUIRED challenge (not PasswordResetRequiredException), its Session answers once."""
    user = kc_user(password="Before-Temp-1")
    master_admin.change_current_realm(TEST_REALM)
    master_admin.set_user_password(user["id"], "Temporary-Pass-1", temporary=True)
    remember("Temporary-Pass-1", "After-Temp-Pass-1")
    assert error_of(lambda: sign_in(cognito, user["username"], "not-the-temporary"))[0] == "NotAuthorizedException"
    challenge = sign_in(cognito, user["username"], "Temporary-Pass-1")
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED" and "AuthenticationResult" not in challenge
    assert challenge["ChallengeParameters"]["USER_ID_FOR_SRP"] == user["id"]

    def answer(new_password, session=challenge["Session"]):
        return cognito.respond_to_auth_challenge(
            ClientId="mobile", ChallengeName="NEW_PASSWORD_REQUIRED", Session=session,
            ChallengeResponses={"USERNAME": user["username"], "NEW_PASSWORD": new_password})

    assert error_of(lambda: answer("short"))[0] == "InvalidPasswordException"   # the session stays good
    assert error_of(lambda: answer("x" * 30, session="A" * 40)) == \
        ("NotAuthorizedException", "Invalid session for the user.")
    tokens = answer("After-Temp-Pass-1")["AuthenticationResult"]
    assert verify_like_cognito(tokens["AccessToken"], live_service, "access")["sub"] == user["id"]
    assert error_of(lambda: answer("After-Temp-Pass-2"))[0] == "NotAuthorizedException"
    assert sign_in(cognito, user["username"], "After-Temp-Pass-1")["AuthenticationResult"]["AccessToken"]
    answer_, _ = srp_exchange(cognito, user["username"], "After-Temp-Pass-1")
    assert respond(cognito, answer_)["AuthenticationResult"]["AccessToken"]


def test_pycognito_cognito_class_signs_in_and_verifies_the_tokens(live_service, kc_user, cognito):
    """pycognito's high-level class, unchanged, pointed at the service by its endpoint alone: SRP, then its
    own token check (keys from {endpoint}/{pool}/.well-known/jwks.json, issuer {endpoint}/{pool}, Cognito's
    shape), the user's attributes, and a refresh."""
    from pycognito import Cognito

    user = kc_user(password="Pycognito-Class-1", email="pycognito-class@example.com", emailVerified=True)
    sign_in(cognito, user["username"], user["password"])   # keeps the SRP verifier
    app = Cognito(POOL_ID, "mobile", username=user["username"],
                  boto3_client_kwargs={"endpoint_url": live_service["url"]})
    app.authenticate(password=user["password"])
    assert app.access_claims["sub"] == user["id"] and app.access_claims["iss"] == live_service["issuer"]
    assert app.id_claims["aud"] == "mobile" and app.id_claims["cognito:username"] == user["username"]
    found = app.get_user()
    assert found.email == "pycognito-class@example.com"
    before = app.access_token
    app.renew_access_token()
    assert app.access_token != before and app.access_claims["sub"] == user["id"]


def pycognito_app(live_service, username: str):
    from pycognito import Cognito

    return Cognito(POOL_ID, "mobile", username=username, boto3_client_kwargs={"endpoint_url": live_service["url"]})


def test_pycognito_cognito_class_for_a_kii_user_migrated_at_the_login_page(live_service, legacy_user):
    """A Kii user whose first sign-in was at Keycloak's login page (the bridge migrated them there): the
    service kept the verifier, so pycognito's SRP sign-in works next."""
    from tests.cognito.test_hosted_ui import browser_code

    user = legacy_user(password="Kii-Login-Page-Srp-1")
    browser_code(live_service, user["username"], user["password"])
    app = pycognito_app(live_service, user["username"])
    app.authenticate(password=user["password"])
    assert app.access_claims["sub"] == user["id"] and app.id_claims["custom:kii_user_id"] == user["kii_user_id"]


def test_pycognito_cognito_class_for_a_console_reset_user(live_service, kc_user, master_admin):
    from pycognito.exceptions import ForceChangePasswordException

    user = kc_user(password="Before-Console-Reset-1")
    master_admin.change_current_realm(TEST_REALM)
    master_admin.set_user_password(user["id"], "Console-Temporary-1", temporary=True)
    remember("Console-Temporary-1", "Chosen-With-Pycognito-1")
    app = pycognito_app(live_service, user["username"])
    with pytest.raises(ForceChangePasswordException):
        app.authenticate(password="Console-Temporary-1")
    app.new_password_challenge("Console-Temporary-1", "Chosen-With-Pycognito-1")
    assert app.access_claims["sub"] == user["id"]
    pycognito_app(live_service, user["username"]).authenticate(password="Chosen-With-Pycognito-1")


def test_pycognito_cognito_class_for_a_user_with_an_authenticator_app(live_service, cognito, kc_user, master_admin):
    from pycognito.exceptions import SoftwareTokenMFAChallengeException

    from tests.cognito.test_mfa import signed_in_user_with_app
    from tests.keycloak.console import next_code

    user = signed_in_user_with_app(cognito, kc_user, master_admin, "Pycognito-Totp-Pass-1")
    app = pycognito_app(live_service, user["username"])
    with pytest.raises(SoftwareTokenMFAChallengeException) as info:
        app.authenticate(password=user["password"])
    app.respond_to_software_token_mfa_challenge(next_code(user), info.value.get_tokens())
    assert app.access_claims["sub"] == user["id"] and app.id_claims["iss"] == live_service["issuer"]
