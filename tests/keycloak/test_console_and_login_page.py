"""Keycloak's own pages in a real browser (Debian's Chromium, Playwright): the login page app users
see (Simplified Chinese by default, nothing loaded from outside the deployment, a Kii user who must
reset told how) and the admin console support staff use (signed in with an authenticator app's code:
tests/keycloak/test_login_otp.py; find a user by Kii userID, see the migration state, send a reset
email; realm settings closed).

Set IDENTITY_SCREENSHOTS=<dir> to keep screenshots (docs/images/ holds the committed ones).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from playwright.sync_api import expect

from identity.legacy.models import MigrationState
from tests.cognito.test_hosted_ui import REDIRECT, pkce
from tests.conftest import TEST_REALM
from tests.keycloak.console import console_login

SHOTS = os.environ.get("IDENTITY_SCREENSHOTS")


def screenshot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / name))


def authorize_url(live_service) -> str:
    _, challenge = pkce()
    return f"{live_service['url']}/oauth2/authorize?" + urlencode({
        "client_id": "mobile", "response_type": "code", "redirect_uri": REDIRECT, "scope": "openid",
        "state": "page", "code_challenge": challenge, "code_challenge_method": "S256"})


@pytest.mark.parametrize("browser_locale", ["zh-CN", "fr-FR"])
def test_the_login_page_is_chinese_and_loads_nothing_from_outside(browser, live_service, browser_locale):
    context = browser.new_context(locale=browser_locale, viewport={"width": 1000, "height": 760})
    page = context.new_page()
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(authorize_url(live_service))
    page.wait_for_load_state("networkidle")
    text = page.inner_text("body")
    # Simplified Chinese, also for a browser asking for a language the realm does not offer.
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert "登录您的健康账户" in text and "健康账户" in page.title()
    assert page.locator("#kc-login").inner_text().strip() == "登录"
    assert "忘记密码" in text
    assert "English" in text and "日本語" in text  # the other languages on offer
    origin = live_service["url"] + "/"
    outside = sorted({url for url in requested if not url.startswith((origin, "data:", "blob:"))})
    assert not outside, outside
    assert len(requested) > 3  # the page and its own scripts, styles and fonts were seen
    if browser_locale == "zh-CN":
        screenshot(page, "login-zh-CN.png")
    context.close()


def test_english_and_japanese_on_request(browser, live_service):
    for locale, title in (("en-US", "Sign in to your health account"), ("ja-JP", "ヘルスアカウントにログイン")):
        context = browser.new_context(locale=locale)
        page = context.new_page()
        page.goto(authorize_url(live_service))
        assert title in page.inner_text("body")
        context.close()


def test_a_kii_user_without_a_password_is_sent_to_the_reset(browser, live_service, legacy_user):
    user = legacy_user(state=MigrationState.reset_required, email="page-reset@example.com")
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(authorize_url(live_service))
    page.fill("#username", user["username"])
    page.fill("#password", "whatever-they-remember")
    page.click("#kc-login")
    page.wait_for_load_state("networkidle")
    text = page.inner_text("body")
    assert "需要先设置新密码" in text and "忘记密码" in text, text[:500]
    screenshot(page, "login-reset-required-zh-CN.png")
    context.close()


def test_support_staff_find_a_kii_user_see_the_state_and_send_a_reset(browser, keycloak_url, support_agent,
                                                                      legacy_user, smtp):
    user = legacy_user(email="console-user@example.com")
    context, page, requested = console_login(browser, keycloak_url, support_agent)
    # Users > Attribute search > Kii userID = ...
    page.click("[data-testid=user-search-toggle]")
    page.get_by_text("Attribute search").click()
    page.click("[data-testid=dropdown-panel-btn]")
    page.click("input[placeholder='Select attribute']")
    page.keyboard.type("Kii")
    page.get_by_role("option", name="Kii userID").click()
    page.fill("#value", user["kii_user_id"])
    page.click("[data-testid=user-attribute-search-add-filter-button]")
    page.click("[data-testid=search-user-attribute-btn]")
    page.get_by_role("link", name=user["username"]).click()
    # The migration state, read-only, beside the Kii userID (expect: the form fills in after it appears).
    expect(page.locator("#kii_user_id")).to_have_value(user["kii_user_id"])
    expect(page.locator("#migration_state")).to_have_value("pending")
    expect(page.locator("#migration_state")).to_be_disabled()
    expect(page.locator("#kii_user_id")).to_be_disabled()
    expect(page.locator("main")).to_contain_text("Migration state")
    page.locator("#migration_state_changed_at").scroll_into_view_if_needed()
    screenshot(page, "console-user.png")

    # Credentials > Credential Reset > Update Password > Send Email: the mail reaches the user.
    page.get_by_role("tab", name="Credentials").click()
    page.click("[data-testid=credential-reset-empty-action]")
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Menu toggle").click()
    page.get_by_role("option", name="Update Password").click()
    dialog.locator("#modal-confirm").click()
    deadline = time.monotonic() + 20
    while smtp.last_to("console-user@example.com") is None and time.monotonic() < deadline:
        time.sleep(0.2)
    mail = smtp.last_to("console-user@example.com")
    assert mail is not None, "no reset email"
    body = mail.get_body(("plain",)).get_content()
    assert f"/realms/{TEST_REALM}/login-actions/action-token?key=" in body
    # Everything the console loaded came from the deployment (Keycloak's origin).
    assert all(url.startswith((keycloak_url + "/", "data:", "blob:")) for url in requested)
    context.close()


def test_support_staff_cannot_open_realm_settings(browser, keycloak_url, support_agent, kc_user):
    context, page, _ = console_login(browser, keycloak_url, support_agent)
    expect(page.locator("nav").first).to_contain_text("Users")  # the menu drawn for this agent's rights
    navigation = page.inner_text("nav")
    assert "Users" in navigation and "Realm settings" not in navigation and "Clients" not in navigation
    # The console's own token, seen on its Admin API calls (the agent gets no password grant:
    # tests/keycloak/test_login_otp.py).
    with page.expect_request(lambda r: "/admin/realms/" in r.url, timeout=30_000) as seen:
        page.reload()
    bearer = seen.value.all_headers().get("authorization", "")
    expect(page.locator("nav").first).to_contain_text("Users")
    page.goto(f"{keycloak_url}/admin/{TEST_REALM}/console/#/{TEST_REALM}/realm-settings")
    # The console answers the route with its refusal; only then is the form's absence telling.
    expect(page.locator("main")).to_contain_text("Forbidden, permission needed: view-realm")
    expect(page.locator("[data-testid=realm-settings-form], #kc-realm-name")).to_have_count(0)
    context.close()
    # The API says the same, whatever the page shows.
    assert bearer.startswith("Bearer "), "the console called the Admin API without a bearer token"
    headers = {"Authorization": bearer}
    base = f"{keycloak_url}/admin/realms/{TEST_REALM}"
    assert requests.get(f"{base}/users?max=1", headers=headers, timeout=10).status_code == 200
    for forbidden in ("/clients", "/authentication/flows", "/roles", "/identity-provider/instances"):
        status = requests.get(base + forbidden, headers=headers, timeout=10).status_code
        assert status == 403, (forbidden, status)
    # The realm itself: Keycloak shows any admin its name, never its settings, and refuses changes.
    summary = requests.get(base, headers=headers, timeout=10).json()
    assert "smtpServer" not in summary and "passwordPolicy" not in summary
    assert requests.put(base, json={"displayName": "x"}, headers=headers, timeout=10).status_code == 403
    # What the role is for: unlock a locked-out user, disable one.
    target = kc_user(password="Target-User-Pass-1")
    unlock = requests.delete(f"{base}/attack-detection/brute-force/users/{target['id']}", headers=headers, timeout=10)
    assert unlock.status_code == 204
    current = requests.get(f"{base}/users/{target['id']}", headers=headers, timeout=10).json()
    disable = requests.put(f"{base}/users/{target['id']}", json={**current, "enabled": False}, headers=headers,
                           timeout=10)
    assert disable.status_code == 204
    assert requests.get(f"{base}/users/{target['id']}", headers=headers, timeout=10).json()["enabled"] is False


def test_a_kii_user_resets_at_the_login_page_and_is_migrated(browser, live_service, legacy_user, smtp,
                                                             master_admin, cognito):
    """Keycloak's own "forgot password": the emailed link, a new password, and the user's migration
    state moves with it (the provider's event listener); the JSON API takes the new password and the
    legacy hash goes."""
    import re

    from tests.cognito.fixtures import store_row

    user = legacy_user(state=MigrationState.reset_required, email="page-forgot@example.com")
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.route(f"{REDIRECT}*", lambda route: route.fulfill(status=200, body="back in the app"))
    page.goto(authorize_url(live_service))
    page.get_by_role("link", name=re.compile("忘记密码")).click()
    page.fill("#username", "page-forgot@example.com")
    page.locator("form").locator("[type=submit]").click()
    deadline = time.monotonic() + 20
    while smtp.last_to("page-forgot@example.com") is None and time.monotonic() < deadline:
        time.sleep(0.2)
    mail = smtp.last_to("page-forgot@example.com")
    assert mail is not None, "no reset email"
    link = re.search(r"(http\S+/login-actions/action-token\S+)", mail.get_body(("plain",)).get_content()).group(1)
    page.goto(link)
    page.fill("#password-new", "Chosen-At-The-Page-1")
    page.fill("#password-confirm", "Chosen-At-The-Page-1")
    page.locator("form").locator("[type=submit]").first.click()
    master_admin.change_current_realm(TEST_REALM)
    deadline = time.monotonic() + 30  # the form's POST completes in its own time
    while master_admin.get_user(user["id"])["attributes"]["migration_state"] != ["migrated"] \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    context.close()
    assert master_admin.get_user(user["id"])["attributes"]["migration_state"] == ["migrated"]
    result = cognito.initiate_auth(AuthFlow="USER_PASSWORD_AUTH", ClientId="mobile", AuthParameters={
        "USERNAME": "page-forgot@example.com", "PASSWORD": "Chosen-At-The-Page-1"})
    assert result["AuthenticationResult"]["AccessToken"]
    row = store_row(live_service["app"], user["kii_user_id"])
    assert row.state == MigrationState.migrated and row.password_hash is None
