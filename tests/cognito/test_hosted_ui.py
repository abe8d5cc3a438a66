"""Cognito's hosted-UI paths: authorization code with PKCE through Keycloak's real login page."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import requests

from tests.cognito.test_sign_in import verify_like_cognito

REDIRECT = "http://127.0.0.1:8000/oauth2/idpresponse"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def browser_code(live_service, username: str, password: str) -> tuple[str, str]:
    """What a browser does: /oauth2/authorize, Keycloak's form, the redirect back with a code."""
    verifier, challenge = pkce()
    session = requests.Session()
    start = session.get(f"{live_service['url']}/oauth2/authorize", allow_redirects=False, timeout=10, params={
        "client_id": "mobile", "response_type": "code", "redirect_uri": REDIRECT, "scope": "openid email",
        "state": "st-1", "code_challenge": challenge, "code_challenge_method": "S256"})
    assert start.status_code == 302
    page = session.get(start.headers["Location"], timeout=10)
    assert page.status_code == 200
    for cookie in session.cookies:
        cookie.secure = False  # Keycloak marks them Secure; a browser treats 127.0.0.1 as secure, requests does not
    action = html.unescape(re.search(r'<form[^>]+id="kc-form-login"[^>]+action="([^"]+)"', page.text).group(1))
    done = session.post(action, data={"username": username, "password": password, "credentialId": ""},
                        allow_redirects=False, timeout=10)
    assert done.status_code == 302, done.text[:500]
    location = urlsplit(done.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["st-1"]
    return query["code"][0], verifier


def test_code_flow_with_pkce(live_service, kc_user):
    user = kc_user(email="browser@example.com", emailVerified=True, password="Browser-Pass-1")
    code, verifier = browser_code(live_service, user["username"], "Browser-Pass-1")
    response = requests.post(f"{live_service['url']}/oauth2/token", timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": "mobile",
        "code_verifier": verifier})
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    assert set(tokens) == {"access_token", "id_token", "refresh_token", "expires_in", "token_type"}
    claims = verify_like_cognito(tokens["id_token"], live_service, "id")
    assert claims["cognito:username"] == user["username"] and isinstance(claims["auth_time"], int)
    verify_like_cognito(tokens["access_token"], live_service, "access")

    info = requests.get(f"{live_service['url']}/oauth2/userInfo", timeout=10,
                        headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200 and info.json()["sub"] == user["id"]

    refreshed = requests.post(f"{live_service['url']}/oauth2/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": "mobile"})
    assert refreshed.status_code == 200 and refreshed.json()["access_token"]

    revoked = requests.post(f"{live_service['url']}/oauth2/revoke", timeout=10,
                            data={"token": tokens["refresh_token"], "client_id": "mobile"})
    assert revoked.status_code == 200
    again = requests.post(f"{live_service['url']}/oauth2/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": "mobile"})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_wrong_verifier_is_refused(live_service, kc_user):
    user = kc_user(password="Browser-Pass-1")
    code, _ = browser_code(live_service, user["username"], "Browser-Pass-1")
    response = requests.post(f"{live_service['url']}/oauth2/token", timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": "mobile",
        "code_verifier": secrets.token_urlsafe(48)})
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_revoke_unknown_token_is_200_and_logout_redirects(live_service):
    assert requests.post(f"{live_service['url']}/oauth2/revoke", data={"token": "nonsense", "client_id": "mobile"},
                         timeout=10).status_code == 200
    response = requests.get(f"{live_service['url']}/logout", allow_redirects=False, timeout=10,
                            params={"client_id": "mobile", "logout_uri": "com.example.app://signed-out"})
    assert response.status_code == 302
    assert "/protocol/openid-connect/logout" in response.headers["Location"]
    assert requests.get(f"{live_service['url']}/oauth2/authorize", params={"client_id": "nope"}, timeout=10,
                        allow_redirects=False).status_code == 400
    assert requests.get(f"{live_service['url']}/oauth2/userInfo", timeout=10).status_code == 401
