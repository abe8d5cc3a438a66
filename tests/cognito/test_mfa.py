"""Authenticator-app MFA end to end, with boto3 and pycognito against the service and the real Keycloak:
SOFTWARE_TOKEN_MFA and MFA_SETUP challenges, AssociateSoftwareToken, VerifySoftwareToken,
SetUserMFAPreference and GetUser's MFA fields. The app is Keycloak's own OTP credential: the codes
come from pyotp with the SecretCode the service gave, and Keycloak checks them."""

from __future__ import annotations

import base64

import pyotp
import pytest

from tests.cognito.test_sign_in import error_of, sign_in
from tests.cognito.test_srp import POOL_ID, failures
from tests.conftest import TEST_REALM
from tests.keycloak.console import next_code, wrong_code
from tests.used_secrets import remember


def keep_secret(secret_code: str) -> None:
    """The app's secret, as the app is given it and as Keycloak keeps it: the secrets scan looks for both."""
    remember(secret_code, base64.b32decode(secret_code + "=" * (-len(secret_code) % 8)).decode())


def otp_credentials(master_admin, user_id: str) -> list[dict]:
    master_admin.change_current_realm(TEST_REALM)
    return [c for c in master_admin.get_credentials(user_id) if c["type"] == "otp"]


def set_up_app(cognito, user: dict, tokens: dict, label: str | None = "Phone") -> None:
    """AssociateSoftwareToken and VerifySoftwareToken with the user's access token, as a settings page does."""
    secret_code = cognito.associate_software_token(AccessToken=tokens["AccessToken"])["SecretCode"]
    keep_secret(secret_code)
    user["totp_secret"] = secret_code
    extra = {"FriendlyDeviceName": label} if label else {}
    answer = cognito.verify_software_token(AccessToken=tokens["AccessToken"], UserCode=next_code(user), **extra)
    assert answer["Status"] == "SUCCESS"


def signed_in_user_with_app(cognito, kc_user, master_admin, password: str) -> dict:
    user = kc_user(password=password, email=f"{password.lower()}@example.com", emailVerified=True)
    tokens = sign_in(cognito, user["username"], password)["AuthenticationResult"]
    set_up_app(cognito, user, tokens)
    assert len(otp_credentials(master_admin, user["id"])) == 1
    return user


def mfa_challenge(cognito, user: dict) -> dict:
    challenge = sign_in(cognito, user["username"], user["password"])
    assert "AuthenticationResult" not in challenge, "signed in with the password alone"
    assert challenge["ChallengeName"] == "SOFTWARE_TOKEN_MFA"
    assert challenge["ChallengeParameters"]["USER_ID_FOR_SRP"] == user["id"]
    return challenge


def answer_code(cognito, challenge: dict, user: dict, code: str) -> dict:
    return cognito.respond_to_auth_challenge(
        ClientId="mobile", ChallengeName="SOFTWARE_TOKEN_MFA", Session=challenge["Session"],
        ChallengeResponses={"USERNAME": user["username"], "SOFTWARE_TOKEN_MFA_CODE": code})


def test_a_signed_in_user_sets_up_an_app_and_then_signs_in_with_its_code(cognito, kc_user, master_admin):
    user = kc_user(password="Mfa-User-Pass-1", email="mfa-user-1@example.com", emailVerified=True)
    tokens = sign_in(cognito, user["username"], user["password"])["AuthenticationResult"]
    assert "UserMFASettingList" not in cognito.get_user(AccessToken=tokens["AccessToken"])

    secret_code = cognito.associate_software_token(AccessToken=tokens["AccessToken"])["SecretCode"]
    keep_secret(secret_code)
    user["totp_secret"] = secret_code
    assert len(secret_code) == 32 and pyotp.TOTP(secret_code).now().isdigit()  # base32, as Cognito's
    # A wrong code: Cognito's own refusal, and Keycloak holds no app.
    assert error_of(lambda: cognito.verify_software_token(AccessToken=tokens["AccessToken"],
                                                          UserCode=wrong_code(user)))[0] == \
        "EnableSoftwareTokenMFAException"
    assert otp_credentials(master_admin, user["id"]) == []
    assert cognito.verify_software_token(AccessToken=tokens["AccessToken"], UserCode=next_code(user),
                                         FriendlyDeviceName="Pixel")["Status"] == "SUCCESS"
    (credential,) = otp_credentials(master_admin, user["id"])
    assert credential["userLabel"] == "Pixel"
    cognito.set_user_mfa_preference(AccessToken=tokens["AccessToken"],
                                    SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True})
    found = cognito.get_user(AccessToken=tokens["AccessToken"])
    assert found["UserMFASettingList"] == ["SOFTWARE_TOKEN_MFA"] and found["PreferredMfaSetting"] == "SOFTWARE_TOKEN_MFA"
    # The pending secret was used up: a second verification without AssociateSoftwareToken has none.
    assert error_of(lambda: cognito.verify_software_token(AccessToken=tokens["AccessToken"],
                                                          UserCode=next_code(user)))[0] == \
        "SoftwareTokenMFANotFoundException"

    challenge = mfa_challenge(cognito, user)
    assert challenge["ChallengeParameters"]["FRIENDLY_DEVICE_NAME"] == "Pixel"
    before = failures(master_admin, user["id"])
    code, message = error_of(lambda: answer_code(cognito, challenge, user, wrong_code(user)))
    assert (code, message) == ("CodeMismatchException", "Invalid code or auth state for the user.")
    assert failures(master_admin, user["id"]) == before + 1  # counted by Keycloak like a wrong password
    # The same Session takes another try; the right code signs in.
    result = answer_code(cognito, challenge, user, next_code(user))["AuthenticationResult"]
    assert cognito.get_user(AccessToken=result["AccessToken"])["Username"] == user["username"]
    # Answered: the Session is spent.
    assert error_of(lambda: answer_code(cognito, challenge, user, next_code(user)))[0] == "NotAuthorizedException"


def test_a_wrong_password_is_refused_before_any_code_is_asked(cognito, kc_user, master_admin):
    user = signed_in_user_with_app(cognito, kc_user, master_admin, "Mfa-User-Pass-2")
    before = failures(master_admin, user["id"])
    assert error_of(lambda: sign_in(cognito, user["username"], "Not-The-Password-9")) == \
        ("NotAuthorizedException", "Incorrect username or password.")
    assert failures(master_admin, user["id"]) == before + 1
    # A right password alone is not counted as a failure: it gets the challenge.
    mfa_challenge(cognito, user)
    assert failures(master_admin, user["id"]) == before + 1


def test_srp_sign_in_then_the_code(cognito, kc_user, master_admin):
    """pycognito's SRP client: PASSWORD_VERIFIER answered, then SOFTWARE_TOKEN_MFA (pycognito hands the
    challenge back as its SoftwareTokenMFAChallengeException, with the Session)."""
    from pycognito.aws_srp import AWSSRP
    from pycognito.exceptions import SoftwareTokenMFAChallengeException

    user = signed_in_user_with_app(cognito, kc_user, master_admin, "Mfa-User-Pass-3")
    srp = AWSSRP(username=user["username"], password=user["password"], pool_id=POOL_ID, client_id="mobile",
                 client=cognito)
    with pytest.raises(SoftwareTokenMFAChallengeException) as info:
        srp.authenticate_user()
    challenge = info.value.get_tokens()
    assert challenge["ChallengeName"] == "SOFTWARE_TOKEN_MFA"
    result = answer_code(cognito, challenge, user, next_code(user))["AuthenticationResult"]
    assert cognito.get_user(AccessToken=result["AccessToken"])["Username"] == user["username"]


def test_mfa_setup_when_the_console_asks_for_an_app(cognito, kc_user, master_admin):
    """Support asked for an authenticator app in the console (required action "Configure OTP"): the
    sign-in is MFA_SETUP; AssociateSoftwareToken and VerifySoftwareToken with its Session, then
    RespondToAuthChallenge MFA_SETUP gives tokens, and the next sign-in asks for the code."""
    user = kc_user(password="Mfa-Setup-Pass-1", requiredActions=["CONFIGURE_TOTP"])
    challenge = sign_in(cognito, user["username"], user["password"])
    assert challenge["ChallengeName"] == "MFA_SETUP"
    assert challenge["ChallengeParameters"] == {"MFAS_CAN_SETUP": '["SOFTWARE_TOKEN_MFA"]'}
    associated = cognito.associate_software_token(Session=challenge["Session"])
    keep_secret(associated["SecretCode"])
    user["totp_secret"] = associated["SecretCode"]
    # A wrong code leaves nothing stored, and the Session takes another try.
    assert error_of(lambda: cognito.verify_software_token(Session=associated["Session"], UserCode=wrong_code(user)))[0] \
        == "EnableSoftwareTokenMFAException"
    verified = cognito.verify_software_token(Session=associated["Session"], UserCode=next_code(user))
    assert verified["Status"] == "SUCCESS" and verified["Session"]
    # Each step's Session answers its own step only.
    assert error_of(lambda: cognito.respond_to_auth_challenge(
        ClientId="mobile", ChallengeName="MFA_SETUP", Session=associated["Session"],
        ChallengeResponses={"USERNAME": user["username"]}))[0] == "NotAuthorizedException"
    result = cognito.respond_to_auth_challenge(ClientId="mobile", ChallengeName="MFA_SETUP", Session=verified["Session"],
                                               ChallengeResponses={"USERNAME": user["username"]})
    tokens = result["AuthenticationResult"]
    assert cognito.get_user(AccessToken=tokens["AccessToken"])["UserMFASettingList"] == ["SOFTWARE_TOKEN_MFA"]
    master_admin.change_current_realm(TEST_REALM)
    assert master_admin.get_user(user["id"])["requiredActions"] == []
    assert len(otp_credentials(master_admin, user["id"])) == 1
    # Spent.
    assert error_of(lambda: cognito.respond_to_auth_challenge(
        ClientId="mobile", ChallengeName="MFA_SETUP", Session=verified["Session"],
        ChallengeResponses={"USERNAME": user["username"]}))[0] == "NotAuthorizedException"
    challenge = mfa_challenge(cognito, user)
    assert answer_code(cognito, challenge, user, next_code(user))["AuthenticationResult"]["AccessToken"]


def test_turning_the_app_off_and_on(cognito, kc_user, master_admin):
    user = signed_in_user_with_app(cognito, kc_user, master_admin, "Mfa-User-Pass-4")
    challenge = mfa_challenge(cognito, user)
    tokens = answer_code(cognito, challenge, user, next_code(user))["AuthenticationResult"]
    cognito.set_user_mfa_preference(AccessToken=tokens["AccessToken"],
                                    SoftwareTokenMfaSettings={"Enabled": False, "PreferredMfa": False})
    assert otp_credentials(master_admin, user["id"]) == []
    assert "UserMFASettingList" not in cognito.get_user(AccessToken=tokens["AccessToken"])
    assert sign_in(cognito, user["username"], user["password"])["AuthenticationResult"]["AccessToken"]
    code, message = error_of(lambda: cognito.set_user_mfa_preference(
        AccessToken=tokens["AccessToken"], SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True}))
    assert (code, message) == ("InvalidParameterException", "User has not verified software token mfa")
    assert error_of(lambda: cognito.set_user_mfa_preference(
        AccessToken=tokens["AccessToken"], SMSMfaSettings={"Enabled": True}))[0] == "InvalidParameterException"


def test_change_password_of_a_user_with_an_app(cognito, kc_user, master_admin):
    user = signed_in_user_with_app(cognito, kc_user, master_admin, "Mfa-User-Pass-5")
    challenge = mfa_challenge(cognito, user)
    tokens = answer_code(cognito, challenge, user, next_code(user))["AuthenticationResult"]
    remember("Mfa-User-Pass-5b")
    assert error_of(lambda: cognito.change_password(AccessToken=tokens["AccessToken"], PreviousPassword="Wrong-Pass-55",
                                                    ProposedPassword="Mfa-User-Pass-5b"))[0] == "NotAuthorizedException"
    cognito.change_password(AccessToken=tokens["AccessToken"], PreviousPassword=user["password"],
                            ProposedPassword="Mfa-User-Pass-5b")
    user["password"] = "Mfa-User-Pass-5b"
    mfa_challenge(cognito, user)


@pytest.mark.parametrize("operation, request_", [
    ("associate_software_token", {}),
    ("verify_software_token", {"UserCode": "123456"}),
    ("verify_software_token", {"Session": "x" * 40, "AccessToken": "y" * 40, "UserCode": "123456"}),
    ("verify_software_token", {"Session": "x" * 40, "UserCode": "12345a"}),
])
def test_malformed_setup_requests(cognito, operation, request_):
    assert error_of(lambda: getattr(cognito, operation)(**request_))[0] == "InvalidParameterException"


def test_a_forged_or_foreign_session_is_refused(cognito, kc_user, master_admin):
    user = kc_user(password="Mfa-Setup-Pass-2", requiredActions=["CONFIGURE_TOTP"])
    setup = sign_in(cognito, user["username"], user["password"])
    assert error_of(lambda: cognito.associate_software_token(Session="A" * 60))[0] == "NotAuthorizedException"
    # An MFA_SETUP Session does not answer SOFTWARE_TOKEN_MFA.
    assert error_of(lambda: cognito.respond_to_auth_challenge(
        ClientId="mobile", ChallengeName="SOFTWARE_TOKEN_MFA", Session=setup["Session"],
        ChallengeResponses={"USERNAME": user["username"], "SOFTWARE_TOKEN_MFA_CODE": "123456"}))[0] == \
        "NotAuthorizedException"
