"""Client authentication, the same rule for the JSON API and the hosted UI (identity/cognito/clients.py):
a confidential app client proves its secret on every call Cognito checks it on, and the service never
fills it in. The JWKS is fetched again only for a key it does not know, at most once per interval."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey
from prometheus_client.parser import text_string_to_metric_families

from identity.cognito import tokens as tokens_module
from tests.cognito.fixtures import SECRET_CLIENT
from tests.cognito.test_sign_in import error_of, sign_in, verify_like_cognito
from tests.used_secrets import remember

PASSWORD = "Client-Auth-Pass-1"
NEW_PASSWORD = "Client-Auth-Pass-2"
WRONG_SECRET = "not-the-client-secret-" + uuid.uuid4().hex[:8]
remember(WRONG_SECRET)
NO_HASH = f"Client {SECRET_CLIENT} is configured with secret but SECRET_HASH was not received"
BAD_HASH = f"Unable to verify secret hash for client {SECRET_CLIENT}"


def secret_hash(secret: str, username: str, client_id: str = SECRET_CLIENT) -> str:
    digest = hmac.new(secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed_in(cognito, live_service, username: str, password: str = PASSWORD) -> dict:
    """Tokens of the confidential client, got the proper way (InitiateAuth with SECRET_HASH)."""
    return sign_in(cognito, username, password, client_id=SECRET_CLIENT,
                   SECRET_HASH=secret_hash(live_service["secret"], username))["AuthenticationResult"]


def refresh_works(cognito, live_service, username: str, refresh_token: str) -> bool:
    try:
        cognito.initiate_auth(AuthFlow="REFRESH_TOKEN_AUTH", ClientId=SECRET_CLIENT, AuthParameters={
            "REFRESH_TOKEN": refresh_token, "USERNAME": username,
            "SECRET_HASH": secret_hash(live_service["secret"], username)})
    except cognito.exceptions.NotAuthorizedException:
        return False
    return True


def wait_for_code(smtp, address: str, seen: int) -> str:
    """The code of the first mail to `address` after the `seen` ones already there."""
    deadline = time.monotonic() + 15
    while len([m for m in smtp.messages if m["To"] == address]) <= seen:
        assert time.monotonic() < deadline, f"no new mail to {address}"
        time.sleep(0.1)
    return smtp.code_for(address)


def mails_to(smtp, address: str) -> int:
    return len([m for m in smtp.messages if m["To"] == address])


# --- /oauth2/token and /oauth2/revoke ---------------------------------------------------------------

def presented(way: str, secret: str) -> dict:
    """The request arguments for each way a caller may (mis)present the client's credentials."""
    return {
        "no secret": {"data": {"client_id": SECRET_CLIENT}},
        "empty secret": {"data": {"client_id": SECRET_CLIENT, "client_secret": ""}},
        "wrong secret in the form": {"data": {"client_id": SECRET_CLIENT, "client_secret": WRONG_SECRET}},
        "wrong secret in Basic": {"data": {}, "auth": (SECRET_CLIENT, WRONG_SECRET)},
        "Basic without a secret": {"data": {}, "auth": (SECRET_CLIENT, "")},
        "Basic that is not base64": {"data": {"client_id": SECRET_CLIENT},
                                     "headers": {"Authorization": "Basic %%%"}},
        "right secret in the form and Basic": {"data": {"client_secret": secret}, "auth": (SECRET_CLIENT, secret)},
        "Basic for another client than the form": {"data": {"client_id": "mobile"},
                                                   "auth": (SECRET_CLIENT, secret)},
        "right secret in the form": {"data": {"client_id": SECRET_CLIENT, "client_secret": secret}},
        "right secret in Basic": {"data": {}, "auth": (SECRET_CLIENT, secret)},
    }[way]


REFUSED = {
    "no secret": (401, "invalid_client"),
    "empty secret": (401, "invalid_client"),
    "wrong secret in the form": (401, "invalid_client"),
    "wrong secret in Basic": (401, "invalid_client"),
    "Basic without a secret": (401, "invalid_client"),
    "Basic that is not base64": (401, "invalid_client"),
    "right secret in the form and Basic": (400, "invalid_request"),  # RFC 6749 5.2: one method per request
    "Basic for another client than the form": (400, "invalid_request"),
}
ACCEPTED = ["right secret in the form", "right secret in Basic"]


@pytest.mark.parametrize("way", list(REFUSED))
def test_token_endpoint_refuses_a_confidential_client_without_its_secret(cognito, live_service, kc_user, way):
    user = kc_user(password=PASSWORD)
    tokens = signed_in(cognito, live_service, user["username"])
    args = presented(way, live_service["secret"])
    response = requests.post(f"{live_service['url']}/oauth2/token", timeout=10, auth=args.get("auth"),
                             headers=args.get("headers"), data={
        **args["data"], "grant_type": "refresh_token", "refresh_token": tokens["RefreshToken"]})
    status, error = REFUSED[way]
    body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
    assert (response.status_code, body.get("error")) == (status, error)  # never the body: it may hold tokens
    assert "access_token" not in body
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("way", ACCEPTED)
def test_token_endpoint_accepts_the_secret_in_the_form_or_basic(cognito, live_service, kc_user, way):
    user = kc_user(password=PASSWORD)
    tokens = signed_in(cognito, live_service, user["username"])
    args = presented(way, live_service["secret"])
    response = requests.post(f"{live_service['url']}/oauth2/token", timeout=10, auth=args.get("auth"),
                             headers=args.get("headers"), data={
        **args["data"], "grant_type": "refresh_token", "refresh_token": tokens["RefreshToken"]})
    assert response.status_code == 200, response.json().get("error")
    verify_like_cognito(response.json()["access_token"], live_service, "access", client_id=SECRET_CLIENT)


def test_public_client_needs_no_secret_and_may_not_present_one(cognito, live_service, kc_user):
    user = kc_user(password=PASSWORD)
    tokens = sign_in(cognito, user["username"], PASSWORD)["AuthenticationResult"]
    refused = requests.post(f"{live_service['url']}/oauth2/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": tokens["RefreshToken"], "client_id": "mobile",
        "client_secret": WRONG_SECRET})
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    accepted = requests.post(f"{live_service['url']}/oauth2/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": tokens["RefreshToken"], "client_id": "mobile"})
    assert accepted.status_code == 200, accepted.json().get("error")


@pytest.mark.parametrize("way", list(REFUSED))
def test_revoke_endpoint_refuses_a_confidential_client_without_its_secret(cognito, live_service, kc_user, way):
    user = kc_user(password=PASSWORD)
    tokens = signed_in(cognito, live_service, user["username"])
    args = presented(way, live_service["secret"])
    response = requests.post(f"{live_service['url']}/oauth2/revoke", timeout=10, auth=args.get("auth"),
                             headers=args.get("headers"), data={**args["data"], "token": tokens["RefreshToken"]})
    status, error = REFUSED[way]
    body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
    assert (response.status_code, body.get("error")) == (status, error)
    assert refresh_works(cognito, live_service, user["username"], tokens["RefreshToken"]), "revoked anyway"


@pytest.mark.parametrize("way", ACCEPTED)
def test_revoke_endpoint_accepts_the_secret_in_the_form_or_basic(cognito, live_service, kc_user, way):
    user = kc_user(password=PASSWORD)
    tokens = signed_in(cognito, live_service, user["username"])
    args = presented(way, live_service["secret"])
    response = requests.post(f"{live_service['url']}/oauth2/revoke", timeout=10, auth=args.get("auth"),
                             headers=args.get("headers"), data={**args["data"], "token": tokens["RefreshToken"]})
    assert response.status_code == 200
    assert not refresh_works(cognito, live_service, user["username"], tokens["RefreshToken"])


# --- the JSON API: SECRET_HASH on every operation Cognito checks it on ------------------------------

def operations(tokens: dict, username: str, email: str):
    """Each operation of a confidential client; `h`: {} (no proof) or a wrong SecretHash (RevokeToken: ClientSecret)."""
    return {
        "SignUp": lambda idp, h: idp.sign_up(ClientId=SECRET_CLIENT, Username=username, Password=PASSWORD,
                                             UserAttributes=[{"Name": "email", "Value": email}], **h),
        "ConfirmSignUp": lambda idp, h: idp.confirm_sign_up(ClientId=SECRET_CLIENT, Username=username,
                                                            ConfirmationCode="000000", **h),
        "ResendConfirmationCode": lambda idp, h: idp.resend_confirmation_code(ClientId=SECRET_CLIENT,
                                                                              Username=username, **h),
        "ForgotPassword": lambda idp, h: idp.forgot_password(ClientId=SECRET_CLIENT, Username=username, **h),
        "ConfirmForgotPassword": lambda idp, h: idp.confirm_forgot_password(
            ClientId=SECRET_CLIENT, Username=username, ConfirmationCode="000000", Password=NEW_PASSWORD, **h),
        "InitiateAuth": lambda idp, h: idp.initiate_auth(
            AuthFlow="USER_PASSWORD_AUTH", ClientId=SECRET_CLIENT,
            AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD,
                            **({"SECRET_HASH": h["SecretHash"]} if h else {})}),
        "RevokeToken": lambda idp, h: idp.revoke_token(
            Token=tokens["RefreshToken"], ClientId=SECRET_CLIENT,
            **({"ClientSecret": WRONG_SECRET} if h else {})),
    }


@pytest.mark.parametrize("proof", ["missing", "wrong"])
@pytest.mark.parametrize("operation", ["SignUp", "ConfirmSignUp", "ResendConfirmationCode", "ForgotPassword",
                                       "ConfirmForgotPassword", "InitiateAuth", "RevokeToken"])
def test_every_operation_checks_the_secret(cognito, live_service, kc_user, smtp, master_admin, realm,
                                           operation, proof):
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    user = kc_user(password=PASSWORD, email=email, emailVerified=True)
    tokens = signed_in(cognito, live_service, user["username"])
    username = user["username"]
    if operation == "SignUp":
        username = f"new-{uuid.uuid4().hex[:10]}"
        email = f"{username}@example.com"
    mails = mails_to(smtp, email)
    h = {} if proof == "missing" else {"SecretHash": secret_hash(WRONG_SECRET, username)}
    code, message = error_of(lambda: operations(tokens, username, email)[operation](cognito, h))
    assert code == "NotAuthorizedException"
    if operation == "RevokeToken":
        assert message == f"Unable to verify client secret for client {SECRET_CLIENT}"
        assert refresh_works(cognito, live_service, user["username"], tokens["RefreshToken"])
    else:
        assert message == (NO_HASH if proof == "missing" else BAD_HASH)
    # Refused before any work: nobody made, no mail sent.
    master_admin.change_current_realm(realm.realm)
    if operation == "SignUp":
        assert master_admin.get_users({"username": username, "exact": True}) == []
    time.sleep(0.5)
    assert mails_to(smtp, email) == mails


def test_the_confidential_client_with_its_secret_does_everything(cognito, live_service, smtp, master_admin, realm):
    secret = live_service["secret"]
    username = f"conf-{uuid.uuid4().hex[:10]}"
    email = f"{username}@example.com"
    proof = {"SecretHash": secret_hash(secret, username)}
    try:
        seen = mails_to(smtp, email)
        assert cognito.sign_up(ClientId=SECRET_CLIENT, Username=username, Password=PASSWORD,
                               UserAttributes=[{"Name": "email", "Value": email}], **proof)["UserConfirmed"] is False
        wait_for_code(smtp, email, seen)
        seen = mails_to(smtp, email)
        cognito.resend_confirmation_code(ClientId=SECRET_CLIENT, Username=username, **proof)
        code = wait_for_code(smtp, email, seen)
        cognito.confirm_sign_up(ClientId=SECRET_CLIENT, Username=username, ConfirmationCode=code, **proof)
        signed_in(cognito, live_service, username)

        seen = mails_to(smtp, email)
        cognito.forgot_password(ClientId=SECRET_CLIENT, Username=username, **proof)
        code = wait_for_code(smtp, email, seen)
        cognito.confirm_forgot_password(ClientId=SECRET_CLIENT, Username=username, ConfirmationCode=code,
                                        Password=NEW_PASSWORD, **proof)
        tokens = signed_in(cognito, live_service, username, NEW_PASSWORD)

        cognito.revoke_token(Token=tokens["RefreshToken"], ClientId=SECRET_CLIENT, ClientSecret=secret)
        assert not refresh_works(cognito, live_service, username, tokens["RefreshToken"])
    finally:
        master_admin.change_current_realm(realm.realm)
        for found in master_admin.get_users({"username": username, "exact": True}):
            master_admin.delete_user(found["id"])


# --- the bootstrap makes the declared client, with the app client's token contract -------------------

def test_bootstrap_makes_the_declared_client_with_the_token_contract(first_bootstrap, master_admin, realm,
                                                                      cognito, live_service, kc_user):
    assert f"created client {SECRET_CLIENT}" in first_bootstrap
    assert not any(live_service["secret"] in change for change in first_bootstrap)
    master_admin.change_current_realm(realm.realm)
    declared = master_admin.get_client(master_admin.get_client_id(SECRET_CLIENT))
    assert declared["publicClient"] is False and declared["clientAuthenticatorType"] == "client-secret"
    assert declared["secret"] == live_service["secret"]
    assert declared["directAccessGrantsEnabled"] is True

    user = kc_user(password=PASSWORD, email=f"{uuid.uuid4().hex[:10]}@example.com", emailVerified=True)
    tokens = signed_in(cognito, live_service, user["username"])
    access = verify_like_cognito(tokens["AccessToken"], live_service, "access", client_id=SECRET_CLIENT)
    identity = verify_like_cognito(tokens["IdToken"], live_service, "id", client_id=SECRET_CLIENT)
    assert access["username"] == user["username"] and identity["cognito:username"] == user["username"]
    assert "aws.cognito.signin.user.admin" in access["scope"].split()
    assert identity["origin_jti"] == access["origin_jti"] and isinstance(access["auth_time"], int)
    assert cognito.get_user(AccessToken=tokens["AccessToken"])["Username"] == user["username"]


# --- the JWKS: fetched again only for an unknown kid, at most once per interval ---------------------

def jwks_fetches(live_service) -> float:
    text = requests.get(f"{live_service['url']}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        if family.name == "identity_jwks_fetches":
            return sum(s.value for s in family.samples if s.name == "identity_jwks_fetches_total")
    raise AssertionError("no identity_jwks_fetches_total on /metrics")


def foreign_token(live_service, kid: str) -> str:
    """Well formed, right issuer, signed by a key Keycloak never had."""
    key = RSAKey.generate_key(2048, parameters={"kid": kid})
    now = int(time.time())
    return jwt.encode({"alg": "RS256", "kid": kid}, {
        "iss": live_service["issuer"], "exp": now + 600, "iat": now, "sub": str(uuid.uuid4()),
        "token_use": "access", "client_id": "mobile"}, key)


def prime(cognito, kc_user) -> None:
    user = kc_user(password=PASSWORD)
    tokens = sign_in(cognito, user["username"], PASSWORD)["AuthenticationResult"]
    assert cognito.get_user(AccessToken=tokens["AccessToken"])["Username"] == user["username"]


def test_bogus_tokens_do_not_refetch_the_jwks(cognito, live_service, kc_user):
    prime(cognito, kc_user)
    before = jwks_fetches(live_service)
    bogus = ["not-a-token", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "x" * 300 + ".y.z", "..",
             "eyJhbGciOiJub25lIn0.e30.", "eyJraWQiOjF9.e30.AA", "e30.e30.e30", "\u00e9.\u00e9.\u00e9", "a.b"]
    for token in bogus:
        assert error_of(lambda: cognito.get_user(AccessToken=token)) == \
            ("NotAuthorizedException", "Invalid Access Token")
    assert jwks_fetches(live_service) - before == 0
    for n in range(10):
        assert error_of(lambda: cognito.get_user(AccessToken=foreign_token(live_service, f"unknown-{n}")))[0] == \
            "NotAuthorizedException"
    assert jwks_fetches(live_service) - before in (0, 1)


def test_an_unknown_kid_refetches_at_most_once_per_interval(cognito, live_service, kc_user, monkeypatch):
    prime(cognito, kc_user)  # the keys are fresh now
    monkeypatch.setattr(tokens_module, "JWKS_REFETCH_SECONDS", 3600)
    before = jwks_fetches(live_service)
    for n in range(10):
        assert error_of(lambda: cognito.get_user(AccessToken=foreign_token(live_service, f"unknown-{n}")))[0] == \
            "NotAuthorizedException"
    assert jwks_fetches(live_service) - before == 0
    # With no interval, each unknown kid is looked up: the refetch is driven by the kid alone.
    monkeypatch.setattr(tokens_module, "JWKS_REFETCH_SECONDS", 0)
    before = jwks_fetches(live_service)
    for n in range(3):
        assert error_of(lambda: cognito.get_user(AccessToken=foreign_token(live_service, f"unknown-{n}")))[0] == \
            "NotAuthorizedException"
    assert jwks_fetches(live_service) - before == 3


def test_a_key_keycloak_rotates_in_is_fetched(cognito, live_service, kc_user, master_admin, realm, monkeypatch):
    """A real rotation: Keycloak signs with a new key; the service fetches it for the new kid."""
    prime(cognito, kc_user)
    monkeypatch.setattr(tokens_module, "JWKS_REFETCH_SECONDS", 0)
    master_admin.change_current_realm(realm.realm)
    realm_id = master_admin.get_realm(realm.realm)["id"]
    name = f"rotated-{uuid.uuid4().hex[:8]}"
    component = master_admin.create_component({
        "name": name, "providerId": "rsa-generated", "providerType": "org.keycloak.keys.KeyProvider",
        "parentId": realm_id, "config": {"priority": ["1000000"], "algorithm": ["RS256"], "keySize": ["2048"]}})
    try:
        user = kc_user(password=PASSWORD)
        tokens = sign_in(cognito, user["username"], PASSWORD)["AuthenticationResult"]
        header = tokens["AccessToken"].split(".")[0]
        kid = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
        assert kid == _kid_of(master_admin, realm, component)
        before = jwks_fetches(live_service)
        assert cognito.get_user(AccessToken=tokens["AccessToken"])["Username"] == user["username"]
        assert jwks_fetches(live_service) - before == 1
        assert cognito.get_user(AccessToken=tokens["AccessToken"])["Username"] == user["username"]
        assert jwks_fetches(live_service) - before == 1  # known now
    finally:
        master_admin.delete_component(component)


def _kid_of(master_admin, realm, component_id: str) -> str:
    keys = master_admin.connection.raw_get(f"admin/realms/{realm.realm}/keys").json()["keys"]
    return next(k["kid"] for k in keys if k.get("providerId") == component_id)

