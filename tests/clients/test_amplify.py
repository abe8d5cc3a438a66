"""Real Cognito clients, unchanged, against the live service: AWS Amplify JS v6 and amazon-cognito-identity-js
under Node (tests/clients/js), pointed at the service by its endpoint alone.

Each script prints one JSON line per step: its outcome (or Cognito's error name) and the API calls it made
(`X-Amz-Target` operation, HTTP status, error name), never a token or the password.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from identity.legacy.models import MigrationState
from tests.cognito.fixtures import store_row
from tests.secrets_scan import keep
from tests.used_secrets import remember

USER_POOL_ID = "cn-north-1_china"  # what apps are configured with (the service does not check it yet)
CLIENT_ID = "mobile"
WRONG_PASSWORD = "Not-The-Password-1"
remember(WRONG_PASSWORD)  # a wrong password is a password: the secrets scan looks for it too


def run_client(scripts, script: str, live_service, username: str, password: str, *steps: str,
               new_password: str = "", app: dict | None = None) -> list[dict]:
    """Run `script` with `steps`; the passwords go in the environment, never on the command line, as does
    the secret of the user's authenticator `app` (tests.keycloak.console's account: its codes go on from
    the last step used, and the steps the client used are recorded back)."""
    node = shutil.which("node")
    assert node, "node (v20) is needed for the client tests"
    env = {**os.environ, "COGNITO_PASSWORD": password, "COGNITO_NEW_PASSWORD": new_password}
    if app is not None:
        env.update(COGNITO_TOTP_SECRET=app.get("totp_secret", ""), COGNITO_TOTP_AFTER=str(app.get("totp_step", 0)))
    done = subprocess.run([node, script, "--endpoint", live_service["url"], "--user-pool-id", USER_POOL_ID,
                           "--client-id", CLIENT_ID, "--username", username, *steps],
                          cwd=scripts, env=env, capture_output=True, text=True, timeout=180)
    keep(f"node {script}", done.stdout, done.stderr)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [line["step"] for line in lines] == list(steps), done.stdout[-2000:]
    used = [line["result"]["totpStep"] for line in lines if line["ok"] and "totpStep" in line["result"]]
    if app is not None and used:
        app["totp_step"] = max(used)
    return lines


def amplify(scripts, live_service, username, password, *steps, new_password="", app=None):
    return run_client(scripts, "amplify.mjs", live_service, username, password, *steps, new_password=new_password,
                      app=app)


def identity_js(scripts, live_service, username, password, *steps, app=None):
    return run_client(scripts, "cognito_identity.mjs", live_service, username, password, *steps, app=app)


def ok(line: dict) -> dict:
    assert line["ok"], line
    return line["result"]


def refused(line: dict) -> str:
    assert not line["ok"], line
    return line["error"]


def calls(line: dict) -> list[tuple]:
    return [(c["operation"], c.get("status"), c.get("error")) for c in line["calls"]]


AMPLIFY_ROUND = ("signIn", "getCurrentUser", "fetchAuthSession", "fetchUserAttributes",
                 "fetchAuthSession:forceRefresh", "fetchAuthSession", "signOut:global", "getUserWithLastToken")


PASSWORD_SIGN_IN = [("InitiateAuth", 200, None)]
SRP_SIGN_IN = [("InitiateAuth", 200, None), ("RespondToAuthChallenge", 200, None)]


def check_amplify_round(lines: list[dict], username: str, sign_in_calls=PASSWORD_SIGN_IN) -> dict:
    """Amplify's whole round for a user whose password is right; the user's attributes."""
    sign_in, current, session, attributes, refresh, after_refresh, sign_out, old_token = lines
    assert ok(sign_in) == {"isSignedIn": True, "signInStep": "DONE"}
    assert calls(sign_in) == sign_in_calls
    assert ok(current)["username"] == username and calls(current) == []

    tokens = ok(session)
    assert tokens["signedIn"] and calls(session) == []  # the tokens signIn stored
    access, id_token = tokens["accessToken"], tokens["idToken"]
    assert access["token_use"] == "access" and access["username"] == username and access["client_id"] == CLIENT_ID
    assert id_token["token_use"] == "id" and id_token["username"] == username and id_token["aud"] == CLIENT_ID
    assert access["sub"] == id_token["sub"] == ok(current)["userId"]

    found = ok(attributes)["attributes"]
    assert found["sub"] == access["sub"] and calls(attributes) == [("GetUser", 200, None)]

    # Amplify v6 refreshes with GetTokensFromRefreshToken: new tokens of the same user, no new refresh token.
    refreshed = ok(refresh)
    assert calls(refresh) == [("GetTokensFromRefreshToken", 200, None)]
    assert refreshed["accessToken"]["sub"] == access["sub"] and refreshed["accessToken"]["token_use"] == "access"
    assert ok(after_refresh)["signedIn"] and calls(after_refresh) == []

    assert ok(sign_out) == {} and calls(sign_out) == [("GlobalSignOut", 200, None)]
    # From the service's side: the access token Amplify held no longer works.
    assert refused(old_token) == "NotAuthorizedException"
    assert calls(old_token) == [("GetUser", 400, "NotAuthorizedException")]
    return found


def test_amplify_first_sign_in_migrates_a_kii_user(client_scripts, live_service, legacy_user):
    user = legacy_user(password="Kii-Amplify-Pass-1")
    found = check_amplify_round(amplify(client_scripts, live_service, user["username"], user["password"],
                                        *AMPLIFY_ROUND), user["username"])
    assert found["custom:kii_user_id"] == user["kii_user_id"]
    row = store_row(live_service["app"], user["kii_user_id"])
    assert row.state == MigrationState.migrated and row.password_hash is None
    # Migrated: the same password signs in again, now against Keycloak alone.
    again = amplify(client_scripts, live_service, user["username"], user["password"], "signIn")
    assert ok(again[0])["isSignedIn"] and calls(again[0]) == [("InitiateAuth", 200, None)]


def test_amplify_native_user(client_scripts, live_service, kc_user):
    user = kc_user(password="Native-Amplify-Pass-1", email="amplify-native@example.com", emailVerified=True)
    found = check_amplify_round(amplify(client_scripts, live_service, user["username"], user["password"],
                                        *AMPLIFY_ROUND), user["username"])
    assert found["email"] == "amplify-native@example.com" and found["email_verified"] == "true"


def test_amplify_wrong_password(client_scripts, live_service, kc_user, legacy_user):
    native = kc_user(password="Native-Amplify-Pass-2")
    pending = legacy_user(password="Kii-Amplify-Pass-2")
    for username in (native["username"], pending["username"], "no-such-user-amplify"):
        sign_in, session = amplify(client_scripts, live_service, username, WRONG_PASSWORD,
                                   "signIn", "fetchAuthSession")
        assert refused(sign_in) == "NotAuthorizedException"
        assert calls(sign_in) == [("InitiateAuth", 400, "NotAuthorizedException")]
        assert not ok(session)["signedIn"]
    row = store_row(live_service["app"], pending["kii_user_id"])
    assert row.state == MigrationState.pending and row.failed_attempts == 1


def test_amplify_default_sign_in_is_srp(client_scripts, live_service, kc_user, legacy_user):
    """Amplify's default sign-in, USER_SRP_AUTH then PASSWORD_VERIFIER, unchanged: the password never
    leaves the app. The service has a verifier for every password it or Keycloak was given since this
    feature (here: the user was created with a password through the Admin API)."""
    user = kc_user(password="Native-Amplify-Pass-3")
    lines = amplify(client_scripts, live_service, user["username"], user["password"], "signInDefault",
                    *AMPLIFY_ROUND[1:])
    check_amplify_round(lines, user["username"], sign_in_calls=SRP_SIGN_IN)

    kii = legacy_user(password="Kii-Amplify-Pass-3")
    # A Kii user not migrated yet: the service has no verifier, so SRP is refused as a wrong password, after
    # the same two calls; the app's fallback, USER_PASSWORD_AUTH, migrates the user (docs/sign-in.md).
    (before,) = amplify(client_scripts, live_service, kii["username"], kii["password"], "signInDefault")
    assert refused(before) == "NotAuthorizedException"
    assert calls(before) == [("InitiateAuth", 200, None), ("RespondToAuthChallenge", 400, "NotAuthorizedException")]
    assert ok(amplify(client_scripts, live_service, kii["username"], kii["password"], "signIn")[0])["isSignedIn"]
    (srp_sign_in,) = amplify(client_scripts, live_service, kii["username"], kii["password"], "signInDefault")
    assert ok(srp_sign_in)["isSignedIn"]
    (wrong,) = amplify(client_scripts, live_service, kii["username"], WRONG_PASSWORD, "signInDefault")
    assert refused(wrong) == "NotAuthorizedException"


def test_amplify_new_password_required(client_scripts, live_service, kc_user, master_admin):
    """Support reset the password in the console with "Temporary" on (the console's default): Amplify's
    sign-in asks for a new one (CONFIRM_SIGN_IN_WITH_NEW_PASSWORD_REQUIRED), confirmSignIn sets it."""
    from tests.conftest import TEST_REALM

    user = kc_user(password="Before-Support-1")
    master_admin.change_current_realm(TEST_REALM)
    master_admin.set_user_password(user["id"], "Temporary-Support-1", temporary=True)
    remember("Temporary-Support-1", "Chosen-After-Support-1")
    sign_in, confirm, attributes = amplify(client_scripts, live_service, user["username"], "Temporary-Support-1",
                                           "signIn", "confirmSignIn:newPassword", "fetchUserAttributes",
                                           new_password="Chosen-After-Support-1")
    assert ok(sign_in) == {"isSignedIn": False, "signInStep": "CONFIRM_SIGN_IN_WITH_NEW_PASSWORD_REQUIRED"}
    assert calls(sign_in) == [("InitiateAuth", 200, None)]
    assert ok(confirm) == {"isSignedIn": True, "signInStep": "DONE"}
    assert calls(confirm) == [("RespondToAuthChallenge", 200, None)]
    assert ok(attributes)["attributes"]["sub"] == user["id"]
    # The new password is the password now, over SRP too (the service kept its verifier).
    (srp_sign_in,) = amplify(client_scripts, live_service, user["username"], "Chosen-After-Support-1",
                             "signInDefault")
    assert ok(srp_sign_in)["isSignedIn"]


IDENTITY_JS_ROUND = ("authenticateUser", "getUserAttributes", "refreshSession", "globalSignOut",
                     "getUserWithLastToken", "refreshSession")


def check_identity_js_round(lines: list[dict], username: str) -> dict:
    """amazon-cognito-identity-js's round for a user whose password is right; the user's attributes."""
    sign_in, attributes, refresh, sign_out, old_token, refresh_after = lines
    tokens = ok(sign_in)
    assert tokens["valid"] and calls(sign_in) == [("InitiateAuth", 200, None)]
    assert tokens["accessToken"]["username"] == username and tokens["idToken"]["aud"] == CLIENT_ID
    found = ok(attributes)["attributes"]
    assert found["sub"] == tokens["accessToken"]["sub"] and calls(attributes) == [("GetUser", 200, None)]
    # This library refreshes with InitiateAuth REFRESH_TOKEN_AUTH, which the service answers.
    refreshed = ok(refresh)
    assert refreshed["valid"] and refreshed["accessTokenChanged"]
    assert refreshed["accessToken"]["sub"] == tokens["accessToken"]["sub"]
    assert calls(refresh) == [("InitiateAuth", 200, None)]
    assert ok(sign_out) == {} and calls(sign_out) == [("GlobalSignOut", 200, None)]
    assert refused(old_token) == "NotAuthorizedException"
    # The sign-out revoked the refresh token too; the library retries a refused refresh (its own backoff)
    # before it gives up, so the same refusal comes more than once.
    assert refused(refresh_after) == "NotAuthorizedException"
    assert calls(refresh_after) and set(calls(refresh_after)) == {("InitiateAuth", 400, "NotAuthorizedException")}
    return found


def test_cognito_identity_js_first_sign_in_migrates_a_kii_user(client_scripts, live_service, legacy_user):
    user = legacy_user(password="Kii-IdentityJs-Pass-1")
    found = check_identity_js_round(identity_js(client_scripts, live_service, user["username"], user["password"],
                                                *IDENTITY_JS_ROUND), user["username"])
    assert found["custom:kii_user_id"] == user["kii_user_id"]
    assert store_row(live_service["app"], user["kii_user_id"]).state == MigrationState.migrated


def test_cognito_identity_js_native_user(client_scripts, live_service, kc_user):
    user = kc_user(password="Native-IdentityJs-Pass-1", email="identityjs-native@example.com", emailVerified=True)
    found = check_identity_js_round(identity_js(client_scripts, live_service, user["username"], user["password"],
                                                *IDENTITY_JS_ROUND), user["username"])
    assert found["email"] == "identityjs-native@example.com"


@pytest.mark.parametrize("who", ["native", "pending", "unknown"])
def test_cognito_identity_js_wrong_password(client_scripts, live_service, kc_user, legacy_user, who):
    username = {"native": lambda: kc_user(password="Native-IdentityJs-Pass-2")["username"],
                "pending": lambda: legacy_user(password="Kii-IdentityJs-Pass-2")["username"],
                "unknown": lambda: "no-such-user-identityjs"}[who]()
    (sign_in,) = identity_js(client_scripts, live_service, username, WRONG_PASSWORD, "authenticateUser")
    assert refused(sign_in) == "NotAuthorizedException"
    assert calls(sign_in) == [("InitiateAuth", 400, "NotAuthorizedException")]


def test_cognito_identity_js_default_sign_in_is_srp(client_scripts, live_service, kc_user):
    user = kc_user(password="Native-IdentityJs-Pass-3")
    assert ok(identity_js(client_scripts, live_service, user["username"], user["password"], "authenticateUser")[0])
    sign_in, attributes = identity_js(client_scripts, live_service, user["username"], user["password"],
                                      "authenticateUserSrp", "getUserAttributes")
    tokens = ok(sign_in)
    assert tokens["valid"] and tokens["accessToken"]["username"] == user["username"]
    assert calls(sign_in) == [("InitiateAuth", 200, None), ("RespondToAuthChallenge", 200, None)]
    assert ok(attributes)["attributes"]["sub"] == tokens["accessToken"]["sub"]
    (wrong,) = identity_js(client_scripts, live_service, user["username"], WRONG_PASSWORD, "authenticateUserSrp")
    assert refused(wrong) == "NotAuthorizedException"


def test_amplify_sets_up_an_authenticator_app_and_signs_in_with_its_code(client_scripts, live_service, kc_user,
                                                                        master_admin):
    """A settings page: setUpTOTP, verifyTOTPSetup, updateMFAPreference; the next sign-in (Amplify's
    default, SRP) asks for the code (CONFIRM_SIGN_IN_WITH_TOTP_CODE) and confirmSignIn gives it."""
    from tests.cognito.test_mfa import otp_credentials

    user = kc_user(password="Amplify-Totp-Pass-1")
    app: dict = {}
    lines = amplify(client_scripts, live_service, user["username"], user["password"], "signIn", "setUpTOTP",
                    "verifyTOTPSetup", "updateMFAPreference:totp", "fetchMFAPreference", "signOut", "signInDefault",
                    "confirmSignIn:totp", "fetchUserAttributes", app=app)
    sign_in, setup, verify, prefer, preference, _, again, confirm, attributes = lines
    assert ok(sign_in)["isSignedIn"]
    assert ok(setup) == {"secretLength": 32, "setupUri": "otpauth:"}
    assert calls(setup) == [("AssociateSoftwareToken", 200, None)]
    assert ok(verify) and calls(verify) == [("VerifySoftwareToken", 200, None)]
    assert ok(prefer) == {} and calls(prefer) == [("SetUserMFAPreference", 200, None)]
    assert ok(preference) == {"enabled": ["TOTP"], "preferred": "TOTP"}
    assert ok(again) == {"isSignedIn": False, "signInStep": "CONFIRM_SIGN_IN_WITH_TOTP_CODE"}
    assert calls(again) == SRP_SIGN_IN
    assert {k: v for k, v in ok(confirm).items() if k != "totpStep"} == {"isSignedIn": True, "signInStep": "DONE"}
    assert calls(confirm) == [("RespondToAuthChallenge", 200, None)]
    assert ok(attributes)["attributes"]["sub"] == user["id"]
    assert len(otp_credentials(master_admin, user["id"])) == 1  # Keycloak's own OTP credential


def test_amplify_mfa_setup_asked_by_the_console(client_scripts, live_service, kc_user, master_admin):
    """Support asked for an app in the console ("Configure OTP"): Amplify's sign-in shows the secret to set
    up (CONTINUE_SIGN_IN_WITH_TOTP_SETUP, after AssociateSoftwareToken), confirmSignIn with the first code
    ends it (VerifySoftwareToken, RespondToAuthChallenge MFA_SETUP)."""
    user = kc_user(password="Amplify-Totp-Pass-2", requiredActions=["CONFIGURE_TOTP"])
    sign_in, confirm, preference = amplify(client_scripts, live_service, user["username"], user["password"],
                                           "signInDefault", "confirmSignIn:totpSetup", "fetchMFAPreference", app={})
    assert ok(sign_in) == {"isSignedIn": False, "signInStep": "CONTINUE_SIGN_IN_WITH_TOTP_SETUP"}
    assert calls(sign_in) == SRP_SIGN_IN + [("AssociateSoftwareToken", 200, None)]
    assert ok(confirm)["isSignedIn"] and ok(confirm)["signInStep"] == "DONE"
    assert calls(confirm) == [("VerifySoftwareToken", 200, None), ("RespondToAuthChallenge", 200, None)]
    assert ok(preference)["enabled"] == ["TOTP"]
    master_admin.change_current_realm(__import__("tests.conftest", fromlist=["TEST_REALM"]).TEST_REALM)
    assert master_admin.get_user(user["id"])["requiredActions"] == []


def test_an_app_set_up_at_the_login_page_is_asked_by_both_libraries(client_scripts, live_service, kc_user, browser):
    """The app a user set up at Keycloak's own page: Amplify and amazon-cognito-identity-js are asked
    for its code (SOFTWARE_TOKEN_MFA), and its codes sign them in."""
    from tests.keycloak.test_login_otp import user_with_an_authenticator_app

    user = user_with_an_authenticator_app(browser, live_service, kc_user, "amplify-login-page-otp@example.com")
    from tests.cognito.test_mfa import keep_secret

    keep_secret(user["totp_secret"])
    sign_in, confirm = amplify(client_scripts, live_service, user["username"], user["password"],
                               "signIn", "confirmSignIn:totp", app=user)
    assert ok(sign_in) == {"isSignedIn": False, "signInStep": "CONFIRM_SIGN_IN_WITH_TOTP_CODE"}
    assert ok(confirm)["isSignedIn"]
    for step in ("authenticateUser:totp", "authenticateUserSrp:totp"):
        (line,) = identity_js(client_scripts, live_service, user["username"], user["password"], step, app=user)
        assert ok(line)["valid"] and ok(line)["accessToken"]["username"] == user["username"]
        assert calls(line)[-1] == ("RespondToAuthChallenge", 200, None)
    (without,) = identity_js(client_scripts, live_service, user["username"], user["password"], "authenticateUser")
    assert refused(without) == "SOFTWARE_TOKEN_MFA"  # the password alone is not enough
