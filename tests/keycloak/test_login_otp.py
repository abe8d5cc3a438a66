"""One-time codes at Keycloak's login page, in a real browser (Debian's Chromium, Playwright): a user
who configured an authenticator app gives its code after the password, as in the direct-grant flow;
support staff (who may manage users) set one up before the admin console loads. The codes come from
pyotp, as from an authenticator app, with the key Keycloak's own setup page shows."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from playwright.sync_api import expect

from identity.keycloak.bootstrap import bootstrap
from tests.busy import DEADLINE_S, refused_as_busy
from tests.cognito.test_hosted_ui import REDIRECT, pkce
from tests.conftest import TEST_REALM
from tests.keycloak.console import WAIT, console_login, console_url, next_code, set_up_authenticator_app, wrong_code

def authorize_url(live_service, challenge: str) -> str:
    return f"{live_service['url']}/oauth2/authorize?" + urlencode({
        "client_id": "mobile", "response_type": "code", "redirect_uri": REDIRECT, "scope": "openid",
        "state": "otp", "code_challenge": challenge, "code_challenge_method": "S256"})


def redeem(live_service, url: str, verifier: str) -> dict:
    code = parse_qs(urlsplit(url).query)["code"][0]
    response = requests.post(f"{live_service['url']}/oauth2/token", timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": "mobile",
        "code_verifier": verifier})
    assert response.status_code == 200, response.text
    return response.json()


class App:
    """A browser context at the app's login page, the app's redirect URI answered here."""

    def __init__(self, browser, live_service, locale="zh-CN"):
        self.verifier, challenge = pkce()
        self.context = browser.new_context(locale=locale)
        self.page = self.context.new_page()
        self.back: list[str] = []
        self.page.route(f"{REDIRECT}*", lambda route: route.fulfill(status=200, body="back in the app"))
        self.page.on("request", lambda r: self.back.append(r.url) if r.url.startswith(REDIRECT) else None)
        self.page.goto(authorize_url(live_service, challenge))

    def password(self, account: dict) -> None:
        self.page.fill("#username", account["username"])
        self.page.fill("#password", account["password"])
        self.page.click("#kc-login")


def user_with_an_authenticator_app(browser, live_service, kc_user, email: str) -> dict:
    """A user who set up an app on Keycloak's own page (an administrator asked for it, as in the console)."""
    user = kc_user(password="Otp-User-Pass-1", email=email, emailVerified=True, requiredActions=["CONFIGURE_TOTP"])
    first = App(browser, live_service)
    first.password(user)
    expect(first.page.locator("#kc-totp-settings-form")).to_be_visible(timeout=WAIT)
    with first.page.expect_request(lambda r: r.url.startswith(REDIRECT), timeout=WAIT):
        set_up_authenticator_app(first.page, user)
    first.context.close()
    return user


def emailed_link(smtp, address: str) -> str:
    deadline = time.monotonic() + 20
    while smtp.last_to(address) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    mail = smtp.last_to(address)
    assert mail is not None, "no reset email"
    return re.search(r"(http\S+/login-actions/action-token\S+)", mail.get_body(("plain",)).get_content()).group(1)


def forgot_password(page, smtp, address: str) -> None:
    """Keycloak's "forgot password" from the page shown, then the emailed link."""
    page.locator("a[href*='reset-credentials']").first.click()
    page.fill("#username", address)
    page.locator("form").locator("[type=submit]").click()
    page.goto(emailed_link(smtp, address))


def answer_pages(page, account: dict, done: str, new_password: str | None = None) -> list[str]:
    """Answer Keycloak's pages (one-time code, authenticator app setup, new password) until `done`
    shows: the pages met, in order."""
    met = []
    while True:
        page.wait_for_selector(f"#kc-otp-login-form, #kc-totp-settings-form, #password-new, {done}", timeout=WAIT)
        shown = next((name for name, selector in (("code", "#kc-otp-login-form"), ("setup", "#kc-totp-settings-form"),
                                                  ("password", "#password-new"))
                      if page.locator(selector).count()), None)
        if shown is None:
            return met
        met.append(shown)
        with page.expect_navigation(timeout=WAIT):
            if shown == "code":
                page.fill("#otp", next_code(account))
                page.click("#kc-login")
            elif shown == "setup":
                set_up_authenticator_app(page, account)
            else:
                account["password"] = new_password
                page.fill("#password-new", new_password)
                page.fill("#password-confirm", new_password)
                page.locator("form").locator("[type=submit]").first.click()


def test_a_user_with_an_authenticator_app_gives_its_code_at_the_login_page(browser, live_service, kc_user):
    user = user_with_an_authenticator_app(browser, live_service, kc_user, "otp-user@example.com")

    # The next sign-in (a new browser, no session): the password, then the code.
    app = App(browser, live_service)
    app.password(user)
    app.page.wait_for_selector("#kc-otp-login-form, body:has-text('back in the app')", timeout=WAIT)
    assert not bool(app.back), "signed in with the password alone"  # (the list would print the code)
    expect(app.page.locator("#otp")).to_be_visible()

    app.page.fill("#otp", wrong_code(user))
    app.page.click("#kc-login")
    expect(app.page.locator("#input-error-otp")).to_be_visible(timeout=WAIT)
    assert not bool(app.back), "a wrong code was taken"

    app.page.fill("#otp", next_code(user))
    with app.page.expect_request(lambda r: r.url.startswith(REDIRECT), timeout=WAIT) as back:
        app.page.click("#kc-login")
    app.context.close()
    tokens = redeem(live_service, back.value.url, app.verifier)
    assert tokens["access_token"] and tokens["id_token"]


def test_a_reset_at_the_login_page_still_asks_for_the_code(browser, live_service, kc_user, smtp, master_admin):
    """The emailed link is no way around the authenticator app: its code is asked before the new
    password, and the app stays the user's."""
    user = user_with_an_authenticator_app(browser, live_service, kc_user, "otp-reset@example.com")
    app = App(browser, live_service)
    forgot_password(app.page, smtp, "otp-reset@example.com")
    app.page.wait_for_selector("#kc-otp-login-form, #kc-totp-settings-form, #password-new", timeout=WAIT)
    assert app.page.locator("#kc-totp-settings-form").count() == 0, "the emailed link took the authenticator app away"
    assert app.page.locator("#kc-otp-login-form").count() == 1, "the emailed link opened the password page"
    app.page.fill("#otp", wrong_code(user))
    app.page.click("#kc-login")
    expect(app.page.locator("#input-error-otp")).to_be_visible(timeout=WAIT)
    app.page.fill("#otp", next_code(user))
    app.page.click("#kc-login")
    expect(app.page.locator("#password-new")).to_be_visible(timeout=WAIT)  # the new password, after the code
    app.page.fill("#password-new", "Otp-User-Pass-2")
    app.page.fill("#password-confirm", "Otp-User-Pass-2")
    with app.page.expect_request(lambda r: r.url.startswith(REDIRECT), timeout=WAIT) as back:
        app.page.locator("form").locator("[type=submit]").first.click()
    app.context.close()
    assert redeem(live_service, back.value.url, app.verifier)["access_token"]
    master_admin.change_current_realm(TEST_REALM)
    assert [c["type"] for c in master_admin.get_credentials(user["id"])].count("otp") == 1


def test_support_staff_set_up_an_authenticator_app_before_the_console_loads(browser, keycloak_url, support_agent):
    context = browser.new_context(locale="en", viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(console_url(keycloak_url))
    page.fill("#username", support_agent["username"])
    page.fill("#password", support_agent["password"])
    page.click("#kc-login")
    page.wait_for_selector("#kc-totp-settings-form, nav", timeout=WAIT)
    assert page.locator("nav").count() == 0, "the console loaded with a password alone"
    expect(page.locator("#kc-totp-settings-form")).to_be_visible()
    set_up_authenticator_app(page, support_agent)
    expect(page.locator("nav").first).to_contain_text("Users", timeout=WAIT)
    context.close()

    # The next sign-in asks for the code, once, and nothing else.
    context = browser.new_context(locale="en", viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(console_url(keycloak_url))
    page.fill("#username", support_agent["username"])
    page.fill("#password", support_agent["password"])
    page.click("#kc-login")
    page.wait_for_selector("#kc-otp-login-form, nav", timeout=WAIT)
    assert page.locator("nav").count() == 0, "the console loaded with a password alone"
    page.fill("#otp", wrong_code(support_agent))
    page.click("#kc-login")
    expect(page.locator("#input-error-otp")).to_be_visible(timeout=WAIT)
    page.fill("#otp", next_code(support_agent))
    page.click("#kc-login")
    expect(page.locator("nav").first).to_contain_text("Users", timeout=WAIT)
    context.close()


def test_support_staff_who_reset_the_password_set_up_an_app_before_the_console_loads(browser, keycloak_url,
                                                                                     support_agent, smtp):
    context = browser.new_context(locale="en", viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(console_url(keycloak_url))
    forgot_password(page, smtp, "agent@example.com")
    met = answer_pages(page, support_agent, "nav", "Support-Agent-Pass-2")
    assert "setup" in met, f"the console loaded after {met} alone"
    expect(page.locator("nav").first).to_contain_text("Users", timeout=WAIT)
    context.close()


def flow_shape(admin, alias: str) -> list[tuple]:
    admin.change_current_realm(TEST_REALM)
    return [(e["level"], e.get("providerId") or e.get("displayName"), e["requirement"])
            for e in admin.get_authentication_flow_executions(alias)]


PREVIOUS_BROWSER_FLOW = [
    (0, "auth-cookie", "ALTERNATIVE"),
    (0, "browser-legacy forms", "ALTERNATIVE"),
    (1, "legacy-bridge-password-form", "REQUIRED"),
]


def test_the_bootstrap_upgrades_a_realm_the_previous_one_made(master_admin, realm, browser, keycloak_url,
                                                             support_agent):
    """A realm as the previous bootstrap left it: a browser flow of cookie, or the bridge form and
    nothing after the password; Keycloak's own reset flow. It gets the one-time code steps, support
    staff signed in without a code are signed out, and a second run changes nothing."""
    master_admin.change_current_realm(realm.realm)
    for execution in master_admin.get_authentication_flow_executions("browser-legacy"):
        if execution["level"] == 1 and execution.get("authenticationFlow"):
            master_admin.delete_authentication_flow_execution(execution["id"])
    master_admin.update_realm(realm.realm, {"resetCredentialsFlow": "reset credentials"})
    master_admin.delete_authentication_flow(next(f["id"] for f in master_admin.get_authentication_flows()
                                                 if f["alias"] == "reset-credentials-otp"))
    assert flow_shape(master_admin, "browser-legacy") == PREVIOUS_BROWSER_FLOW
    context = browser.new_context(locale="en", viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(console_url(keycloak_url))
    page.fill("#username", support_agent["username"])
    page.fill("#password", support_agent["password"])
    page.click("#kc-login")
    expect(page.locator("nav").first).to_contain_text("Users", timeout=WAIT)  # the password alone, then

    changes = bootstrap(master_admin, realm)

    page.goto("about:blank")
    page.goto(console_url(keycloak_url))
    expect(page.locator("#username")).to_be_visible(timeout=WAIT)  # that session is over: sign in again
    context.close()

    shape = flow_shape(master_admin, "browser-legacy")
    assert shape[:3] == PREVIOUS_BROWSER_FLOW, shape
    assert [s for s in shape if s[1] == "auth-otp-form"] == [(2, "auth-otp-form", "REQUIRED")] * 2, shape
    assert {s[1] for s in shape if s[0] == 2} == {"conditional-user-configured", "conditional-user-role",
                                                  "auth-otp-form"}, shape
    reset = flow_shape(master_admin, "reset-credentials-otp")
    assert "reset-otp" not in {s[1] for s in reset} and [s for s in reset if s[1] == "auth-otp-form"] == \
        [(1, "auth-otp-form", "REQUIRED")] * 2, reset
    settings = master_admin.get_realm(realm.realm)
    assert (settings["browserFlow"], settings["resetCredentialsFlow"]) == ("browser-legacy", "reset-credentials-otp")
    assert changes and bootstrap(master_admin, realm) == []


def test_the_bootstrap_repairs_a_one_time_code_step_cut_short(master_admin, realm):
    """An OTP step missing (a run stopped midway, a hand edit) is put back."""
    whole = flow_shape(master_admin, "browser-legacy")
    otp_form = [e for e in master_admin.get_authentication_flow_executions("browser-legacy")
                if e.get("providerId") == "auth-otp-form"]
    assert len(otp_form) == 2, whole
    master_admin.delete_authentication_flow_execution(otp_form[-1]["id"])

    changes = bootstrap(master_admin, realm)

    assert changes
    assert flow_shape(master_admin, "browser-legacy") == whole
    assert bootstrap(master_admin, realm) == []


def test_user_managers_get_no_password_grant(browser, keycloak_url, support_agent, cognito, master_admin):
    """Whoever may manage users signs in at the login page, with its one-time code; a password grant
    (Keycloak's token endpoint, the service's InitiateAuth) would open the Admin API without one."""
    token_url = f"{keycloak_url}/realms/{TEST_REALM}/protocol/openid-connect/token"

    def grant(client_id, **extra):
        # Asked again while Keycloak is still busy recording the previous refusal (tests/busy.py).
        deadline = time.monotonic() + DEADLINE_S
        while True:
            since_ms = int(time.time() * 1000)
            response = requests.post(token_url, timeout=10, data={
                "grant_type": "password", "client_id": client_id, "username": support_agent["username"],
                "password": support_agent["password"], "scope": "openid", **extra})
            if response.status_code != 400 or time.monotonic() > deadline or \
                    not refused_as_busy(master_admin, support_agent["id"], since_ms):
                return response
            time.sleep(0.2)

    def refused_everywhere(**extra):
        for client_id in ("admin-cli", "mobile"):
            response = grant(client_id, **extra)
            assert (response.status_code, "access_token" in response.text) == (401, False), (client_id, response.text)
        with pytest.raises(cognito.exceptions.NotAuthorizedException):
            cognito.initiate_auth(AuthFlow="USER_PASSWORD_AUTH", ClientId="mobile",
                                  AuthParameters={"USERNAME": support_agent["username"],
                                                  "PASSWORD": support_agent["password"]})

    refused_everywhere()  # no authenticator app yet
    context, _, _ = console_login(browser, keycloak_url, support_agent)  # the console: the app set up
    context.close()
    refused_everywhere(totp=next_code(support_agent))  # with the app and its code: still the console only


def test_an_app_set_up_through_the_api_is_asked_at_the_login_page(browser, live_service, kc_user, cognito,
                                                                  master_admin):
    """AssociateSoftwareToken and VerifySoftwareToken store Keycloak's own OTP credential: the login page
    asks for the same app's code after the password."""
    from tests.cognito.test_mfa import signed_in_user_with_app

    user = signed_in_user_with_app(cognito, kc_user, master_admin, "Api-App-Pass-1")
    app = App(browser, live_service)
    app.password(user)
    app.page.wait_for_selector("#kc-otp-login-form, body:has-text('back in the app')", timeout=WAIT)
    assert not bool(app.back), "signed in with the password alone"
    app.page.fill("#otp", next_code(user))
    with app.page.expect_request(lambda r: r.url.startswith(REDIRECT), timeout=WAIT) as back:
        app.page.click("#kc-login")
    app.context.close()
    assert redeem(live_service, back.value.url, app.verifier)["access_token"]
