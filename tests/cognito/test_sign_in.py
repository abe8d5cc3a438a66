"""The Cognito JSON API through boto3's real cognito-idp client, against the live service."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import Counter

import pytest
import requests
from botocore.exceptions import ClientError
from joserfc import jwt
from joserfc.jwk import KeySet

from identity.legacy.models import MigrationState
from tests.cognito.fixtures import SECRET_CLIENT, store_row
from tests.conftest import TEST_REALM

PASSWORD_AUTH = "USER_PASSWORD_AUTH"


def sign_in(cognito, username, password, client_id="mobile", **extra):
    return cognito.initiate_auth(AuthFlow=PASSWORD_AUTH, ClientId=client_id,
                                 AuthParameters={"USERNAME": username, "PASSWORD": password, **extra})


def error_of(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def verify_like_cognito(token: str, live_service, token_use: str, client_id: str = "mobile") -> dict:
    """As Cognito's verifier: keys from {iss}/.well-known/jwks.json by kid; iss, exp, token_use, aud/client_id."""
    issuer = live_service["issuer"]
    discovery = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
    assert discovery["issuer"] == issuer
    jwks = requests.get(discovery["jwks_uri"], timeout=10).json()
    assert all(k["kty"] == "RSA" and k["use"] == "sig" and k["alg"] == "RS256" for k in jwks["keys"])
    decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256"])
    assert decoded.header["kid"] in {k["kid"] for k in jwks["keys"]}
    claims = decoded.claims
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": issuer}, exp={"essential": True}).validate(claims)
    assert claims["token_use"] == token_use
    if token_use == "id":
        assert claims["aud"] == client_id
    else:
        assert claims["client_id"] == client_id
    return claims


def test_native_user_signs_in_and_gets_cognito_tokens(cognito, live_service, kc_user):
    user = kc_user(email="native@example.com", emailVerified=True, password="Native-Pass-1")
    result = sign_in(cognito, user["username"], "Native-Pass-1")["AuthenticationResult"]
    assert result["TokenType"] == "Bearer" and result["ExpiresIn"] == 3600 and result["RefreshToken"]
    id_claims = verify_like_cognito(result["IdToken"], live_service, "id")
    access = verify_like_cognito(result["AccessToken"], live_service, "access")
    assert id_claims["cognito:username"] == user["username"] and id_claims["email_verified"] is True
    assert access["username"] == user["username"]
    assert "aws.cognito.signin.user.admin" in access["scope"].split()
    assert isinstance(id_claims["auth_time"], int) and isinstance(access["auth_time"], int)
    assert id_claims["origin_jti"] == access["origin_jti"]
    # A refresh keeps the original authentication's auth_time and origin_jti, as Cognito's do.
    refreshed = cognito.initiate_auth(AuthFlow="REFRESH_TOKEN_AUTH", ClientId="mobile", AuthParameters={
        "REFRESH_TOKEN": result["RefreshToken"]})["AuthenticationResult"]
    again = verify_like_cognito(refreshed["IdToken"], live_service, "id")
    assert again["origin_jti"] == id_claims["origin_jti"] and again["auth_time"] == id_claims["auth_time"]
    # By email as well.
    assert sign_in(cognito, "native@example.com", "Native-Pass-1")["AuthenticationResult"]["AccessToken"]


def test_wrong_password_and_unknown_user_look_the_same(cognito, kc_user):
    user = kc_user(password="Native-Pass-1")
    assert error_of(lambda: sign_in(cognito, user["username"], "nope")) == \
        ("NotAuthorizedException", "Incorrect username or password.")
    assert error_of(lambda: sign_in(cognito, "no-such-user-anywhere", "nope")) == \
        ("NotAuthorizedException", "Incorrect username or password.")


def test_first_login_migrates_the_legacy_password(cognito, live_service, legacy_user, master_admin):
    user = legacy_user(password="Kii-Old-Pass-1")
    assert master_admin.get_credentials(user["id"]) == []
    result = sign_in(cognito, user["username"], "Kii-Old-Pass-1")["AuthenticationResult"]
    assert verify_like_cognito(result["IdToken"], live_service, "id")["custom:kii_user_id"] == user["kii_user_id"]
    row = store_row(live_service["app"], user["kii_user_id"])
    assert row.state == MigrationState.migrated and row.password_hash is None and row.migrated_at
    credentials = master_admin.get_credentials(user["id"])
    assert [c["type"] for c in credentials] == ["password"]
    assert '"algorithm":"argon2"' in credentials[0]["credentialData"].replace(" ", "")
    # Afterwards Keycloak alone answers, and the old password still works there.
    assert sign_in(cognito, user["username"], "Kii-Old-Pass-1")["AuthenticationResult"]["AccessToken"]
    assert error_of(lambda: sign_in(cognito, user["username"], "wrong"))[0] == "NotAuthorizedException"


def test_first_login_by_email_and_by_phone(cognito, live_service, legacy_user):
    by_email = legacy_user(email="kii-user@example.com")
    assert sign_in(cognito, "KII-User@example.com", by_email["password"])["AuthenticationResult"]
    by_phone = legacy_user(phone="+8613912345678")
    assert sign_in(cognito, "13912345678", by_phone["password"])["AuthenticationResult"]
    assert store_row(live_service["app"], by_phone["kii_user_id"]).state == MigrationState.migrated


def test_legacy_password_the_new_policy_would_refuse_still_migrates(cognito, live_service, legacy_user):
    user = legacy_user(password="abc")  # shorter than the realm's 8 for new passwords
    assert sign_in(cognito, user["username"], "abc")["AuthenticationResult"]
    assert store_row(live_service["app"], user["kii_user_id"]).state == MigrationState.migrated
    assert sign_in(cognito, user["username"], "abc")["AuthenticationResult"]


def test_wrong_legacy_password_keeps_the_hash(cognito, live_service, legacy_user):
    user = legacy_user()
    assert error_of(lambda: sign_in(cognito, user["username"], "wrong")) == \
        ("NotAuthorizedException", "Incorrect username or password.")
    row = store_row(live_service["app"], user["kii_user_id"])
    assert row.state == MigrationState.pending and row.password_hash and row.failed_attempts == 1


def test_reset_required_and_disabled(cognito, live_service, legacy_user):
    reset = legacy_user(state=MigrationState.reset_required)
    assert error_of(lambda: sign_in(cognito, reset["username"], "anything")) == \
        ("PasswordResetRequiredException", "Password reset required for the user")
    disabled = legacy_user(disabled=True)
    assert error_of(lambda: sign_in(cognito, disabled["username"], disabled["password"])) == \
        ("NotAuthorizedException", "User is disabled.")
    # A wrong password does not reveal that the account is disabled.
    assert error_of(lambda: sign_in(cognito, disabled["username"], "wrong"))[1] == "Incorrect username or password."
    assert store_row(live_service["app"], disabled["kii_user_id"]).failed_attempts == 1


def test_a_deleted_or_disabled_user_without_a_hash_never_gets_a_migration_state_answer(cognito, live_service,
                                                                                      legacy_user):
    """What `--deleted` leaves (disabled, hash removed, reset_required; a Kii-disabled user without a usable
    hash looks the same): no password can be shown right, so each is a wrong one, counted as one; never
    PasswordResetRequiredException, which would tell the account exists."""
    gone = legacy_user(state=MigrationState.reset_required, disabled=True, email="gone@example.com")
    for username, password in ((gone["username"], gone["password"]), (gone["username"], "anything"),
                               ("gone@example.com", "anything"), (f"nobody-{uuid.uuid4().hex[:8]}", "anything")):
        assert error_of(lambda: sign_in(cognito, username, password)) == \
            ("NotAuthorizedException", "Incorrect username or password."), username
    assert store_row(live_service["app"], gone["kii_user_id"]).failed_attempts == 3


# Passwords no hash can take: over 4,096 bytes (in characters; in bytes with fewer characters), and text
# that is not text (a lone surrogate, written as its JSON escape so it reaches the service as sent: boto3
# would refuse to encode it).
UNUSABLE_PASSWORDS = {"5000-characters": json.dumps("x" * 5000), "4200-bytes": json.dumps("密" * 1400),
                      "lone-surrogate": '"\\ud800"'}


def raw_initiate_auth(app, username: str, password_json: str, address: str):
    """InitiateAuth with a hand-written body (`password_json` is the password as JSON text), from `address`;
    returns (status, __type, message) and the seconds it took."""
    body = ('{"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "mobile", "AuthParameters": '
            '{"USERNAME": %s, "PASSWORD": %s}}' % (json.dumps(username), password_json))
    started = time.monotonic()
    response = app.test_client().post("/", data=body.encode(), environ_base={"REMOTE_ADDR": address}, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth"})
    elapsed = time.monotonic() - started
    answer = json.loads(response.data)
    return (response.status_code, answer.get("__type"), answer.get("message")), elapsed


def settled(read, expected, seconds: float = 10.0):
    """`read()` once it equals `expected`, or its last value after `seconds` (for Keycloak's bookkeeping,
    which runs after its answer)."""
    deadline = time.monotonic() + seconds
    while True:
        value = read()
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def keycloak_failures(master_admin, user_id: str) -> int:
    master_admin.change_current_realm(TEST_REALM)
    return master_admin.connection.raw_get(
        f"admin/realms/{TEST_REALM}/attack-detection/brute-force/users/{user_id}").json()["numFailures"]


def address_failures(app, address: str) -> int:
    from identity.cognito.models import ClientFailure
    from identity.db import db

    with app.app_context():
        row = db.session.get(ClientFailure, address)
        return row.failures if row else 0


@pytest.mark.parametrize("password", list(UNUSABLE_PASSWORDS.values()), ids=list(UNUSABLE_PASSWORDS))
def test_an_unusable_password_is_a_wrong_password(cognito, live_service, legacy_user, master_admin, password):
    """A pending Kii user, a migrated one and an unknown name: the answer of a wrong password, after the
    same minimum time, counted where a wrong password is (the legacy lockout, Keycloak's brute-force
    protection, the per-address limit)."""
    app = live_service["app"]
    pending, migrated = legacy_user(), legacy_user()
    assert sign_in(cognito, migrated["username"], migrated["password"])["AuthenticationResult"]
    address = f"2001:db8::{uuid.uuid4().hex[:4]}"
    floor = int(app.config["FAILED_SIGN_IN_FLOOR_MS"]) / 1000
    for username in (pending["username"], migrated["username"], f"no-such-user-{uuid.uuid4().hex[:8]}"):
        answer, elapsed = raw_initiate_auth(app, username, password, address)
        assert answer == (400, "NotAuthorizedException", "Incorrect username or password."), username
        assert elapsed >= floor, username
    assert store_row(app, pending["kii_user_id"]).failed_attempts == 1
    assert settled(lambda: keycloak_failures(master_admin, migrated["id"]), 1) == 1
    assert address_failures(app, address) == 3
    # Nothing else changed: the pending user still signs in with the right password.
    assert store_row(app, pending["kii_user_id"]).state == MigrationState.pending
    assert sign_in(cognito, pending["username"], pending["password"])["AuthenticationResult"]


def test_a_username_that_is_not_text_is_an_unknown_user(live_service):
    """A lone surrogate names nobody: the unknown user's answer, counted, not an internal error."""
    app = live_service["app"]
    address = f"2001:db8::{uuid.uuid4().hex[:4]}"
    for password in ('"Some-Pass-1"', UNUSABLE_PASSWORDS["lone-surrogate"]):
        answer, elapsed = raw_initiate_auth(app, "\ud800", password, address)
        assert answer == (400, "NotAuthorizedException", "Incorrect username or password.")
        assert elapsed >= int(app.config["FAILED_SIGN_IN_FLOOR_MS"]) / 1000
    assert address_failures(app, address) == 2


@pytest.mark.parametrize("password", ["x" * 5000, "密" * 1400], ids=["5000-characters", "4200-bytes"])
def test_the_bridge_takes_an_unusable_password_as_a_wrong_one(live_service, legacy_user, dev_env, password):
    """Keycloak's login page asks the bridge: the same rule, the same count."""
    user = legacy_user()
    response = requests.post(f"{live_service['url']}/bridge/v1/verify", timeout=30,
                             json={"user_id": user["id"], "username": user["username"], "password": password},
                             headers={"Authorization": f"Bearer {dev_env['IDENTITY_BRIDGE_SECRET']}"})
    assert (response.status_code, response.json()) == (200, {"valid": False, "reason": "wrong_password"})
    row = store_row(live_service["app"], user["kii_user_id"])
    assert row.state == MigrationState.pending and row.failed_attempts == 1


def test_lockout_after_repeated_failures(cognito, live_service, legacy_user):
    user = legacy_user()
    for _ in range(4):
        assert error_of(lambda: sign_in(cognito, user["username"], "wrong"))[1] == "Incorrect username or password."
    assert error_of(lambda: sign_in(cognito, user["username"], "wrong")) == \
        ("NotAuthorizedException", "Password attempts exceeded")
    # Locked: even the right password is refused until the lockout ends, and nothing migrates.
    assert error_of(lambda: sign_in(cognito, user["username"], user["password"]))[1] == "Password attempts exceeded"
    assert store_row(live_service["app"], user["kii_user_id"]).state == MigrationState.pending


def test_keycloak_lockout_of_a_native_user_is_password_attempts_exceeded(cognito, kc_user):
    user = kc_user(password="Native-Pass-1")
    for _ in range(5):  # the realm's failureFactor
        assert error_of(lambda: sign_in(cognito, user["username"], "wrong"))[1] == "Incorrect username or password."
    # Keycloak answers "Invalid user credentials" for a locked user; its event and attack-detection
    # status tell the service what to say.
    assert error_of(lambda: sign_in(cognito, user["username"], "Native-Pass-1")) == \
        ("NotAuthorizedException", "Password attempts exceeded")


def test_right_password_succeeds_while_keycloak_is_busy_with_the_same_user(cognito, kc_user, keycloak_url):
    """Keycloak refuses a user's login while it still records that user's previous one; the service
    must not turn that into "Incorrect username or password" for the right password."""
    user = kc_user(password="Native-Pass-1")
    stop = threading.Event()
    refused_elsewhere = []

    def direct_logins():  # another client of the same user, straight at Keycloak's token endpoint
        while not stop.is_set():
            response = requests.post(f"{keycloak_url}/realms/{TEST_REALM}/protocol/openid-connect/token",
                                     data={"grant_type": "password", "client_id": "mobile",
                                           "username": user["username"], "password": "Native-Pass-1"},
                                     timeout=10)
            if response.status_code != 200:
                refused_elsewhere.append(response.status_code)
            time.sleep(0.02)

    from prometheus_client import REGISTRY

    def busy_retries() -> float:  # the service's count of refusals it found to be Keycloak still busy
        return REGISTRY.get_sample_value("identity_keycloak_busy_retries_total") or 0.0

    before = busy_retries()
    threads = [threading.Thread(target=direct_logins)]
    for thread in threads:
        thread.start()
    answers = Counter()
    try:
        deadline = time.monotonic() + 120
        # 15 sign-ins, and on until the service has met Keycloak busy with this user.
        while answers["signed in"] < 15 or (busy_retries() == before and time.monotonic() < deadline):
            try:
                assert sign_in(cognito, user["username"], "Native-Pass-1")["AuthenticationResult"]["AccessToken"]
                answers["signed in"] += 1
            except ClientError as exc:
                # Keycloak still busy when the service's time was up: the password was not judged, and the
                # app is told to try again. Never "Incorrect username or password." for the right password.
                assert exc.response["Error"]["Code"] == "TooManyRequestsException", exc.response["Error"]
                answers["try again"] += 1
            assert time.monotonic() < deadline, answers
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    # The scenario happened: Keycloak refused the right password as busy, and the service tried again.
    assert busy_retries() > before, (answers, refused_elsewhere)


def test_a_refusal_the_admin_api_cannot_explain_is_an_internal_error(app, kc_user):
    """Keycloak's token endpoint refuses, its Admin API does not answer (here: a closed port): the
    refusal may have been Keycloak still busy with the user, so it is not called a wrong password."""
    from identity.keycloak.admin import AdminSession
    from identity.keycloak.errors import KeycloakUnavailable
    from identity.keycloak.gateway import KeycloakGateway
    from identity.keycloak.grants import PasswordGrants
    from tests.cognito.fixtures import free_port

    with app.app_context():
        service = app.extensions["cognito"].service
    unreachable = KeycloakGateway(AdminSession(f"http://127.0.0.1:{free_port()}", TEST_REALM, "nobody", "x", 2),
                                  TEST_REALM)
    grants = PasswordGrants(service.oidc, unreachable, patience_s=5)
    user = kc_user(password="Native-Pass-1")
    # The Admin API is asked only on a refusal: the right password needs nothing else.
    assert grants.grant("mobile", None, user["username"], "Native-Pass-1", user["id"])["access_token"]
    with pytest.raises(KeycloakUnavailable):
        grants.grant("mobile", None, user["username"], "not-the-password", user["id"])


def test_refresh_get_user_global_sign_out(cognito, legacy_user):
    user = legacy_user()
    tokens = sign_in(cognito, user["username"], user["password"])["AuthenticationResult"]
    refreshed = cognito.initiate_auth(AuthFlow="REFRESH_TOKEN_AUTH", ClientId="mobile",
                                      AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]})["AuthenticationResult"]
    assert refreshed["AccessToken"] and "RefreshToken" not in refreshed
    me = cognito.get_user(AccessToken=refreshed["AccessToken"])
    assert me["Username"] == user["username"]
    assert {"Name": "custom:kii_user_id", "Value": user["kii_user_id"]} in me["UserAttributes"]

    assert cognito.global_sign_out(AccessToken=refreshed["AccessToken"])["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert error_of(lambda: cognito.initiate_auth(
        AuthFlow="REFRESH_TOKEN", ClientId="mobile", AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]})) == \
        ("NotAuthorizedException", "Refresh Token has been revoked")
    assert error_of(lambda: cognito.get_user(AccessToken=refreshed["AccessToken"]))[0] == "NotAuthorizedException"


def test_revoke_token(cognito, kc_user):
    user = kc_user(password="Native-Pass-1")
    tokens = sign_in(cognito, user["username"], "Native-Pass-1")["AuthenticationResult"]
    cognito.revoke_token(Token=tokens["RefreshToken"], ClientId="mobile")
    assert error_of(lambda: cognito.initiate_auth(
        AuthFlow="REFRESH_TOKEN_AUTH", ClientId="mobile", AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]})
    )[1] == "Refresh Token has been revoked"


def test_secret_hash(cognito, live_service, kc_user):
    user = kc_user(password="Native-Pass-1")
    digest = hmac.new(live_service["secret"].encode(), (user["username"] + SECRET_CLIENT).encode(),
                      hashlib.sha256).digest()
    good = base64.b64encode(digest).decode()
    assert error_of(lambda: sign_in(cognito, user["username"], "Native-Pass-1", client_id=SECRET_CLIENT))[0] == \
        "NotAuthorizedException"
    assert error_of(lambda: sign_in(cognito, user["username"], "Native-Pass-1", client_id=SECRET_CLIENT,
                                    SECRET_HASH="AAAA" + good[4:]))[1] == \
        f"Unable to verify secret hash for client {SECRET_CLIENT}"
    result = sign_in(cognito, user["username"], "Native-Pass-1", client_id=SECRET_CLIENT, SECRET_HASH=good)
    verify_like_cognito(result["AuthenticationResult"]["IdToken"], live_service, "id", client_id=SECRET_CLIENT)


def test_unknown_client_and_flow(cognito):
    assert error_of(lambda: sign_in(cognito, "u", "p", client_id="nope")) == \
        ("ResourceNotFoundException", "User pool client nope does not exist.")
    assert error_of(lambda: cognito.initiate_auth(AuthFlow="CUSTOM_AUTH", ClientId="mobile",
                                                  AuthParameters={}))[0] == "InvalidParameterException"


@pytest.mark.parametrize("body, target, expected", [
    (b'{"AuthFlow": "USER_PASSWORD_AUTH", "AuthParameters": {}}', "InitiateAuth", "'ClientId'"),
    (b'{"AuthFlow": 5, "ClientId": "mobile"}', "InitiateAuth", "'AuthFlow'"),
    (b'{"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "mobile", "AuthParameters": {"USERNAME": 1}}',
     "InitiateAuth", "AuthParameters"),
    (b'{"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "mobile", "AuthParameters": {"USERNAME": "u"}}',
     "InitiateAuth", "PASSWORD"),
    (b"not json", "InitiateAuth", "JSON"),
    (b"[1, 2]", "GetUser", "JSON object"),
    (b"{}", "GetUser", "'AccessToken'"),
    (b'{"Token": "x"}', "RevokeToken", "'ClientId'"),
    (b"\xff\xfe", "GlobalSignOut", "JSON"),
])
def test_malformed_requests_get_the_cognito_error_shape(live_service, body, target, expected):
    response = requests.post(live_service["url"] + "/", data=body, timeout=10, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"AWSCognitoIdentityProviderService.{target}"})
    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "InvalidParameterException:"
    assert response.json()["__type"] == "InvalidParameterException"
    assert expected in response.json()["message"]


def test_unknown_operation(live_service):
    response = requests.post(live_service["url"] + "/", data=b"{}", timeout=10,
                             headers={"X-Amz-Target": "AWSCognitoIdentityProviderService.CreateUserPool"})
    assert response.status_code == 400 and response.json()["__type"] == "UnknownOperationException"


def test_invalid_access_token(cognito):
    assert error_of(lambda: cognito.get_user(AccessToken="not.a.token"))[0] == "NotAuthorizedException"


def test_keycloak_down_is_an_internal_error_within_a_bounded_time(app, realm, database_url, legacy_user):
    from tests.cognito.fixtures import free_port, live_app

    user = legacy_user()
    down = live_app(realm, database_url, free_port(), KEYCLOAK_URL=f"http://127.0.0.1:{free_port()}",
                    KEYCLOAK_TIMEOUT=2)
    started = time.monotonic()
    response = down.test_client().post("/", json={"AuthFlow": PASSWORD_AUTH, "ClientId": "mobile", "AuthParameters": {
        "USERNAME": user["username"], "PASSWORD": user["password"]}},
        headers={"X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth"})
    assert response.status_code == 500 and response.get_json(force=True)["__type"] == "InternalErrorException"
    assert time.monotonic() - started < 10
    assert b"Traceback" not in response.data
    # Nothing changed: still pending with its hash, and it signs in once Keycloak answers again.
    row = store_row(down, user["kii_user_id"])
    assert row.state == MigrationState.pending and row.password_hash


def test_database_down_is_an_internal_error(realm):
    from tests.cognito.fixtures import free_port, live_app

    down = live_app(realm, f"mysql+pymysql://u:p@127.0.0.1:{free_port()}/x", free_port())
    response = down.test_client().post("/", json={"AuthFlow": PASSWORD_AUTH, "ClientId": "mobile", "AuthParameters": {
        "USERNAME": "someone", "PASSWORD": "pw"}}, headers={"X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth"})
    assert response.status_code == 500, response.data
    assert response.get_json(force=True)["__type"] == "InternalErrorException"


def test_timing_does_not_reveal_accounts(cognito, legacy_user, kc_user):
    """Unknown user, wrong Kii password, wrong password of a migrated user: medians within 30%."""
    import statistics

    pending = legacy_user()
    migrated = legacy_user()
    sign_in(cognito, migrated["username"], migrated["password"])
    cases = {"unknown": "no-such-user-xyz", "pending": pending["username"], "migrated": migrated["username"]}
    samples = {name: [] for name in cases}
    for _ in range(5):
        for name, username in cases.items():
            started = time.perf_counter()
            error_of(lambda: sign_in(cognito, username, "wrong-password"))
            samples[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    base = medians["unknown"]
    for name, value in medians.items():
        assert abs(value - base) <= 0.3 * base, medians


def test_failures_from_one_address_are_limited(app, realm, database_url, legacy_user, kc_user):
    """Per client address, shared through the database: a guesser moving across accounts is stopped too."""
    from tests.cognito.fixtures import free_port, live_app

    limited = live_app(realm, database_url, free_port(), IP_FAILURE_LIMIT=3, FAILED_SIGN_IN_FLOOR_MS=0)
    client = limited.test_client()
    target = {"X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth"}

    def attempt(username, password, address):
        response = client.post("/", json={"AuthFlow": PASSWORD_AUTH, "ClientId": "mobile", "AuthParameters": {
            "USERNAME": username, "PASSWORD": password}}, headers=target, environ_base={"REMOTE_ADDR": address})
        return response.status_code, json.loads(response.data).get("message")

    users = [legacy_user() for _ in range(3)]
    for user in users:
        assert attempt(user["username"], "wrong", "203.0.113.7") == (400, "Incorrect username or password.")
    native = kc_user(password="Native-Pass-1")
    assert attempt(native["username"], "Native-Pass-1", "203.0.113.7") == (400, "Password attempts exceeded")
    assert attempt(native["username"], "Native-Pass-1", "203.0.113.8")[0] == 200
