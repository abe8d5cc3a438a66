"""Who may call the provider's legacy-migration endpoint: the service's own account, nobody else. Support
staff hold manage-users too (they unlock and disable users), and so may another client's service account;
neither may set a pending user's password, skip the password policy, mint tickets, store an authenticator
app, write the state or list users."""

from __future__ import annotations

import base64
import html
import json
import re
import secrets
import uuid
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import requests

from identity.keycloak.passwords import migrate_password
from tests.cognito.test_hosted_ui import pkce
from tests.conftest import TEST_REALM
from tests.used_secrets import remember, remember_code

STAFF_PASSWORD = "Support-Staff-Pass-1"
CONSOLE = "security-admin-console"


def token(keycloak_url: str, data: dict) -> str:
    response = requests.post(f"{keycloak_url}/realms/{TEST_REALM}/protocol/openid-connect/token", data=data,
                             timeout=30)
    assert response.status_code == 200, response.text
    remember(response.json()["access_token"])
    return response.json()["access_token"]


def console_token(keycloak_url: str, staff: dict) -> str:
    """Support staff's access token as the admin console gets it: the realm's login page (password,
    then the one-time code support staff must give), the authorization code, the token."""
    verifier, challenge = pkce()
    redirect = f"{keycloak_url}/admin/{TEST_REALM}/console/"
    browser = requests.Session()
    page = browser.get(f"{keycloak_url}/realms/{TEST_REALM}/protocol/openid-connect/auth", timeout=30, params={
        "client_id": CONSOLE, "redirect_uri": redirect, "response_type": "code", "scope": "openid",
        "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"})
    for cookie in browser.cookies:
        cookie.secure = False  # Keycloak marks them secure; this is plain HTTP on loopback
    answer = browser.post(form_action(page.text), data={"username": staff["username"], "password": STAFF_PASSWORD,
                                                        "credentialId": ""}, allow_redirects=False, timeout=30)
    if answer.status_code == 200 and 'name="otp"' in answer.text:
        code = pyotp.TOTP(staff["totp_secret"]).now()
        remember_code(code)
        answer = browser.post(form_action(answer.text), data={"otp": code}, allow_redirects=False, timeout=30)
    assert answer.status_code == 302, answer.text[:500]
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    return token(keycloak_url, {"grant_type": "authorization_code", "client_id": CONSOLE, "code": code,
                                "redirect_uri": redirect, "code_verifier": verifier})


def form_action(page: str) -> str:
    return html.unescape(re.search(r'<form[^>]+action="([^"]+)"', page).group(1))


def calls(keycloak_url: str, user_id: str, bearer: str) -> tuple[int, ...]:
    """(password write, state write, ticket, authenticator app write, user page, its plan) answers to this
    bearer."""
    base = f"{keycloak_url}/realms/{TEST_REALM}/legacy-migration/users/{user_id}"
    headers = {"Authorization": f"Bearer {bearer}"}
    password = requests.post(f"{base}/password", json={"password": "Short", "ticket_for_client": "mobile"},
                             headers=headers, timeout=30)
    state = requests.put(f"{base}/state", json={"kii_user_id": "kii-forged", "state": "pending"},
                         headers=headers, timeout=30)
    ticket = requests.post(f"{base}/ticket", json={"ticket_for_client": "mobile", "code_checked": True},
                           headers=headers, timeout=30)
    app = requests.post(f"{base}/software-token", json={"secret": "F" * 20, "code": "123456"},
                        headers=headers, timeout=30)
    page = requests.get(f"{keycloak_url}/realms/{TEST_REALM}/legacy-migration/users", params={"max": 5},
                        headers=headers, timeout=30)
    plan = requests.get(f"{keycloak_url}/realms/{TEST_REALM}/legacy-migration/users/plan", params={"max": 5},
                        headers=headers, timeout=30)
    return (password.status_code, state.status_code, ticket.status_code, app.status_code, page.status_code,
            plan.status_code)


def credentials(master_admin, user_id: str) -> list[str]:
    master_admin.change_current_realm(TEST_REALM)
    return [c["type"] for c in master_admin.get_credentials(user_id)]


@pytest.fixture
def support_staff(master_admin, kc_user) -> dict:
    """A member of the bootstrap's support-staff group, as a person in support would be: a password and
    an authenticator app (imported with the key here, as Keycloak's own setup page would store it)."""
    key = secrets.token_hex(10)
    remember(key)
    otp = {"type": "otp", "userLabel": "phone", "secretData": json.dumps({"value": key}),
           "credentialData": json.dumps({"subType": "totp", "digits": 6, "counter": 0, "period": 30,
                                         "algorithm": "HmacSHA1"})}
    remember(STAFF_PASSWORD)
    member = kc_user(email=f"staff-{uuid.uuid4().hex[:8]}@example.com", emailVerified=True, firstName="Support",
                     lastName="Staff", credentials=[{"type": "password", "value": STAFF_PASSWORD,
                                                     "temporary": False}, otp])
    member["totp_secret"] = base64.b32encode(key.encode()).decode()
    master_admin.change_current_realm(TEST_REALM)
    group = next(g for g in master_admin.get_groups({"search": "support-staff", "exact": True})
                 if g["name"] == "support-staff")
    master_admin.group_user_add(member["id"], group["id"])
    management = master_admin.get_client_id("realm-management")
    roles = {r["name"] for r in master_admin.get_composite_client_roles_of_user(member["id"], management)}
    assert "manage-users" in roles  # the premise: support staff may manage users
    return member


@pytest.fixture
def other_service(master_admin):
    """Another confidential client whose service account holds manage-users, as the service's does."""
    master_admin.change_current_realm(TEST_REALM)
    client_id = f"other-service-{uuid.uuid4().hex[:8]}"
    secret = uuid.uuid4().hex
    remember(secret)
    uuid_ = master_admin.create_client({"clientId": client_id, "enabled": True, "publicClient": False,
                                        "secret": secret, "serviceAccountsEnabled": True,
                                        "standardFlowEnabled": False, "directAccessGrantsEnabled": False})
    account = master_admin.get_client_service_account_user(uuid_)
    management = master_admin.get_client_id("realm-management")
    master_admin.assign_client_role(account["id"], management, [master_admin.get_client_role(management,
                                                                                             "manage-users")])
    yield {"client_id": client_id, "secret": secret}
    master_admin.change_current_realm(TEST_REALM)
    master_admin.delete_client(uuid_)


def test_support_staff_may_not_set_a_pending_users_password(keycloak_url, support_staff, legacy_user,
                                                             master_admin, app_ctx, realm):
    from identity.keycloak import keycloak

    pending = legacy_user()
    bearer = console_token(keycloak_url, support_staff)
    assert calls(keycloak_url, pending["id"], bearer) == (403,) * 6
    assert credentials(master_admin, pending["id"]) == []
    master_admin.change_current_realm(TEST_REALM)
    attributes = master_admin.get_user(pending["id"])["attributes"]
    assert attributes["kii_user_id"] == [pending["kii_user_id"]] and attributes["migration_state"] == ["pending"]
    # The service's own account still may.
    assert migrate_password(keycloak.admin, realm.realm, pending["id"], "Kii-Old-Pass-1") == (True, None)
    assert credentials(master_admin, pending["id"]) == ["password"]


def test_another_clients_service_account_is_refused(keycloak_url, other_service, kc_user):
    user = kc_user()
    bearer = token(keycloak_url, {"grant_type": "client_credentials", "client_id": other_service["client_id"],
                                  "client_secret": other_service["secret"]})
    assert calls(keycloak_url, user["id"], bearer) == (403,) * 6


def test_without_the_realms_setting_nobody_may_call_it(keycloak_url, kc_user, master_admin, realm, app_ctx):
    """The provider learns the service's client from the realm (the bootstrap writes it); a realm without
    it refuses every caller rather than guess."""
    from identity.keycloak import keycloak
    from identity.keycloak.bootstrap import MIGRATION_CALLER_ATTRIBUTE, bootstrap
    from identity.keycloak.passwords import PasswordRefused

    remember("Kii-Old-Pass-1")
    user = kc_user()
    master_admin.change_current_realm(TEST_REALM)
    attributes = dict(master_admin.get_realm(TEST_REALM).get("attributes") or {})
    assert attributes.get(MIGRATION_CALLER_ATTRIBUTE) == realm.admin_client_id
    attributes.pop(MIGRATION_CALLER_ATTRIBUTE)
    master_admin.update_realm(TEST_REALM, {"attributes": attributes})
    try:
        with pytest.raises(PasswordRefused) as refused:
            migrate_password(keycloak.admin, realm.realm, user["id"], "Kii-Old-Pass-1")
        assert refused.value.error == "forbidden"
    finally:
        assert any(MIGRATION_CALLER_ATTRIBUTE in change for change in bootstrap(master_admin, realm))
        master_admin.change_current_realm(TEST_REALM)
    assert migrate_password(keycloak.admin, realm.realm, user["id"], "Kii-Old-Pass-1") == (True, None)
