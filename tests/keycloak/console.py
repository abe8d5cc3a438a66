"""Keycloak's login page and console as a person uses them: authenticator-app codes, the console's sign-in."""

from __future__ import annotations

import time

import pyotp
from playwright.sync_api import expect

from tests.conftest import TEST_REALM
from tests.used_secrets import remember, remember_code

STEP = 30  # the realm's TOTP period (Keycloak's default)
WAIT = 30_000  # ms: a loaded machine


def next_code(account: dict) -> str:
    """A code for a time step Keycloak has not seen yet for this account: it refuses a code used
    before, and takes the steps next to the current one."""
    totp = pyotp.TOTP(account["totp_secret"])
    while True:
        now = int(time.time()) // STEP
        step = max(now, account.get("totp_step", now - 1) + 1)
        if step <= now + 1:
            break
        time.sleep(STEP - time.time() % STEP + 0.5)
    account["totp_step"] = step
    code = totp.at(step * STEP)
    remember_code(code)
    return code


def wrong_code(account: dict) -> str:
    """Six digits that are no code of this account anywhere near now."""
    totp = pyotp.TOTP(account["totp_secret"])
    now = int(time.time()) // STEP
    near = {totp.at((now + delta) * STEP) for delta in range(-3, 4)}
    candidate = int(totp.at(now * STEP))
    while f"{candidate:06d}" in near:
        candidate = (candidate + 1) % 1_000_000
    return f"{candidate:06d}"


def set_up_authenticator_app(page, account: dict) -> None:
    """Keycloak's own setup page (required action CONFIGURE_TOTP): read the key it shows under
    "unable to scan?", and answer with a code from it, as an authenticator app would."""
    page.click("#mode-manual")
    secret = page.inner_text("#kc-totp-secret-key").replace(" ", "").strip()
    remember(secret)
    account["totp_secret"] = secret
    page.fill("#totp", next_code(account))
    page.fill("#userLabel", "phone")
    page.click("#saveTOTPBtn")


def console_url(keycloak_url: str) -> str:
    return f"{keycloak_url}/admin/{TEST_REALM}/console/#/{TEST_REALM}/users"


def console_login(browser, keycloak_url, agent, locale="en"):
    """Sign in to the console as support staff: the password, then the authenticator app (set up at
    the first sign-in, its code afterwards)."""
    context = browser.new_context(locale=locale, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(console_url(keycloak_url))
    page.fill("#username", agent["username"])
    page.fill("#password", agent["password"])
    page.click("#kc-login")
    if "totp_secret" in agent:
        expect(page.locator("#otp")).to_be_visible(timeout=WAIT)
        page.fill("#otp", next_code(agent))
        page.click("#kc-login")
    else:
        expect(page.locator("#kc-totp-settings-form")).to_be_visible(timeout=WAIT)
        set_up_authenticator_app(page, agent)
    expect(page.locator("nav").first).to_contain_text("Users", timeout=WAIT)
    page.wait_for_load_state("networkidle")
    return context, page, requested
