"""A real browser (Debian's Chromium, driven by Playwright) at Keycloak's login page, as a Kii user."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from identity.legacy.models import MigrationState
from tests.cognito.fixtures import store_row
from tests.cognito.test_hosted_ui import REDIRECT, pkce
from tests.cognito.test_sign_in import verify_like_cognito

def sign_in_with_browser(browser, live_service, username: str, password: str) -> dict:
    verifier, challenge = pkce()
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.route(f"{REDIRECT}*", lambda route: route.fulfill(status=200, body="signed in"))  # the app
    page.goto(f"{live_service['url']}/oauth2/authorize?" + urlencode({
        "client_id": "mobile", "response_type": "code", "redirect_uri": REDIRECT, "scope": "openid email",
        "state": "browser", "code_challenge": challenge, "code_challenge_method": "S256"}))
    page.fill("#username", username)
    page.fill("#password", password)
    # Wait for the browser's request to the app's redirect URI itself (up to 30 s: a loaded CI
    # machine), not for a page event that may come before or after it.
    with page.expect_request(lambda request: request.url.startswith(REDIRECT), timeout=30_000) as back:
        page.click("#kc-login")
    context.close()
    code = parse_qs(urlsplit(back.value.url).query)["code"][0]
    response = requests.post(f"{live_service['url']}/oauth2/token", timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": "mobile",
        "code_verifier": verifier})
    assert response.status_code == 200, response.text
    return response.json()


def test_kii_user_signs_in_at_the_login_page_in_a_browser(browser, live_service, legacy_user, caplog):
    user = legacy_user(password="Kii-Chromium-1", email="chromium@example.com")
    caplog.set_level(logging.INFO, logger="identity.bridge.endpoints")
    tokens = sign_in_with_browser(browser, live_service, user["username"], "Kii-Chromium-1")
    claims = verify_like_cognito(tokens["id_token"], live_service, "id")
    assert claims["custom:kii_user_id"] == user["kii_user_id"] and claims["email_verified"] is True
    assert store_row(live_service["app"], user["kii_user_id"]).state == MigrationState.migrated
    asked = [r for r in caplog.records if r.getMessage() == "bridge: legacy check"]
    assert len(asked) == 1

    # Again, by email: Keycloak holds the password now and does not ask the bridge.
    tokens = sign_in_with_browser(browser, live_service, "chromium@example.com", "Kii-Chromium-1")
    assert verify_like_cognito(tokens["access_token"], live_service, "access")["username"] == user["username"]
    assert len([r for r in caplog.records if r.getMessage() == "bridge: legacy check"]) == 1
