"""Tokens that Keycloak issues after bootstrap carry Cognito's claims, with Cognito's types."""

from __future__ import annotations

import base64
import json

import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.conftest import password_grant


def decode(token: str, keycloak_url: str, realm_name: str) -> dict:
    """Verify the signature against the realm's JWKS, as a Cognito-style verifier does."""
    jwks = requests.get(f"{keycloak_url}/realms/{realm_name}/protocol/openid-connect/certs", timeout=30).json()
    decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256"])
    assert decoded.header["kid"]
    jwt.JWTClaimsRegistry(exp={"essential": True}, iss={"essential": True}).validate(decoded.claims)
    return decoded.claims


def test_tokens_carry_cognito_claims(realm, keycloak_url, kc_user, master_admin):
    master_admin.change_current_realm(realm.realm)
    group_id = master_admin.create_group({"name": "caregivers"}, skip_exists=True) or next(
        g["id"] for g in master_admin.get_groups() if g["name"] == "caregivers")
    user = kc_user(email="claims@example.com", emailVerified=True, password="Correct-Horse-42",
                   attributes={"kii_user_id": ["kii-0001"], "phone_number": ["+8613812345678"],
                               "phone_number_verified": ["true"]})
    master_admin.group_user_add(user["id"], group_id)

    tokens = password_grant(keycloak_url, realm.realm, "mobile", user["username"], user["password"])
    # Keycloak counts the seconds left after issuing; the service reports the lifetime (test_oidc).
    assert tokens["expires_in"] in (3599, 3600)
    # Cognito's shape: the base Keycloak answered at, then the user pool id (keycloak_spi_bridge's
    # CognitoIssuerMapper); the refresh token keeps Keycloak's own, which its refresh grant checks.
    issuer = f"{keycloak_url}/cn-north-1_china"

    id_token = decode(tokens["id_token"], keycloak_url, realm.realm)
    assert id_token["iss"] == issuer
    assert "at_hash" not in id_token   # as Cognito's API sign-in: the hosted UI's keeps it
    assert id_token["aud"] == "mobile"
    assert id_token["token_use"] == "id"
    assert id_token["cognito:username"] == user["username"]
    assert isinstance(id_token["cognito:username"], str)
    assert id_token["email"] == "claims@example.com"
    assert id_token["email_verified"] is True
    assert id_token["custom:kii_user_id"] == "kii-0001"
    assert id_token["phone_number"] == "+8613812345678"
    assert id_token["phone_number_verified"] is True
    assert id_token["cognito:groups"] == ["caregivers"]
    # auth_time: Keycloak records it for browser sign-ins only; the project's mapper
    # (keycloak_spi_bridge, AuthTimeMapper) fills it for the password grant too.
    assert isinstance(id_token["iat"], int) and isinstance(id_token["exp"], int)
    assert isinstance(id_token["auth_time"], int) and id_token["iat"] - 60 <= id_token["auth_time"] <= id_token["iat"]
    assert isinstance(id_token["origin_jti"], str) and id_token["origin_jti"]

    access = decode(tokens["access_token"], keycloak_url, realm.realm)
    assert access["iss"] == issuer
    refresh = json.loads(base64.urlsafe_b64decode(tokens["refresh_token"].split(".")[1] + "=="))
    assert refresh["iss"] == f"{keycloak_url}/realms/{realm.realm}"
    # The lifetime is the access token's; the ID token copies its exp, with an iat read a moment later.
    assert access["exp"] - access["iat"] == 3600
    assert id_token["exp"] == access["exp"] and 0 <= id_token["iat"] - access["iat"] <= 1
    assert access["token_use"] == "access"
    assert access["client_id"] == "mobile"
    assert access["username"] == user["username"]
    assert access["version"] == 2
    assert "aws.cognito.signin.user.admin" in access["scope"].split()
    assert access["cognito:groups"] == ["caregivers"]
    assert access["sub"] == id_token["sub"] == user["id"]
    assert access["origin_jti"] == id_token["origin_jti"] and isinstance(access["auth_time"], int)


def test_no_groups_claim_without_groups(realm, keycloak_url, kc_user):
    user = kc_user(email="nogroups@example.com", emailVerified=False, password="Correct-Horse-42")
    tokens = password_grant(keycloak_url, realm.realm, "mobile", user["username"], user["password"])
    id_token = decode(tokens["id_token"], keycloak_url, realm.realm)
    assert id_token["email_verified"] is False
    assert "cognito:groups" not in id_token or id_token["cognito:groups"] == []


def test_discovery_lists_issuer(realm, keycloak_url):
    discovery = requests.get(f"{keycloak_url}/realms/{realm.realm}/.well-known/openid-configuration",
                             timeout=30).json()
    assert discovery["issuer"] == f"{keycloak_url}/realms/{realm.realm}"
    assert "S256" in discovery["code_challenge_methods_supported"]
    assert "RS256" in discovery["id_token_signing_alg_values_supported"]


def test_admin_token_is_reused(app_ctx):
    from identity.keycloak import keycloak

    admin = keycloak.admin
    admin.get_users({"max": 1})
    first = admin.connection.token["access_token"]
    admin.get_users({"max": 1})
    admin.get_realm_users_profile()
    assert keycloak.admin is admin
    assert admin.connection.token["access_token"] == first
