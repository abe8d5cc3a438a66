"""`identity keycloak bootstrap` against the real Keycloak: creates, repairs, and is idempotent."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import replace

import pytest
import requests
from keycloak.exceptions import KeycloakError

from identity.keycloak.bootstrap import bootstrap
from tests.conftest import SECRET_CLIENT
from tests.used_secrets import remember


def snapshot(admin, realm_name: str) -> str:
    """Everything bootstrap manages, as one comparable JSON text."""
    admin.change_current_realm(realm_name)
    realm = admin.get_realm(realm_name)
    clients = []
    for client_id in ("mobile", "identity-service", SECRET_CLIENT):
        uuid = admin.get_client_id(client_id)
        clients.append({
            "client": admin.get_client(uuid),
            "mappers": sorted(admin.get_mappers_from_client(uuid), key=lambda m: m["name"]),
            "default": sorted(s["name"] for s in admin.get_client_default_client_scopes(uuid)),
            "optional": sorted(s["name"] for s in admin.get_client_optional_client_scopes(uuid)),
        })
    scopes = sorted(admin.get_client_scopes(), key=lambda s: s["name"])
    return json.dumps({"realm": realm, "clients": clients, "scopes": scopes,
                       "profile": admin.get_realm_users_profile()}, sort_keys=True)


def test_first_run_creates_everything(first_bootstrap, realm):
    assert f"created realm {realm.realm}" in first_bootstrap
    assert "created client mobile" in first_bootstrap
    assert "created client identity-service" in first_bootstrap
    assert any("granted realm-management roles" in c for c in first_bootstrap)
    # The admin client's secret is set but never printed.
    assert not any(realm.admin_client_secret in c for c in first_bootstrap)


def test_second_run_changes_nothing(master_admin, realm):
    before = snapshot(master_admin, realm.realm)
    assert bootstrap(master_admin, realm) == []
    assert snapshot(master_admin, realm.realm) == before


def test_repairs_drift(master_admin, realm):
    master_admin.change_current_realm(realm.realm)
    master_admin.update_realm(realm.realm, {"bruteForceProtected": False, "accessTokenLifespan": 300})
    mobile = master_admin.get_client_id("mobile")
    mapper = next(m for m in master_admin.get_mappers_from_client(mobile) if m["name"] == "client_id")
    master_admin.remove_client_mapper(mobile, mapper["id"])

    changes = bootstrap(master_admin, realm)

    assert any(c.startswith(f"updated realm {realm.realm}") and "bruteForceProtected" in c for c in changes)
    assert "added mapper 'client_id' to client mobile" in changes
    settings = master_admin.get_realm(realm.realm)
    assert settings["bruteForceProtected"] is True
    assert settings["accessTokenLifespan"] == 3600
    assert bootstrap(master_admin, realm) == []


def test_remakes_a_direct_grant_flow_cut_short(master_admin, realm, kc_user):
    """A flow missing its password step would let a username alone in: never left bound."""
    master_admin.change_current_realm(realm.realm)
    step = next(e for e in master_admin.get_authentication_flow_executions("direct-grant-legacy")
                if e.get("providerId") == "legacy-migration-ticket-or-password")
    master_admin.delete_authentication_flow_execution(step["id"])

    changes = bootstrap(master_admin, realm)

    assert "removed an incomplete direct-grant-legacy" in changes
    assert "created authentication flow direct-grant-legacy" in changes
    assert master_admin.get_realm(realm.realm)["directGrantFlow"] == "direct-grant-legacy"
    user = kc_user(password="Flow-Pass-1")
    refused = requests.post(f"{realm.server_url}/realms/{realm.realm}/protocol/openid-connect/token", timeout=30,
                            data={"grant_type": "password", "client_id": "mobile", "username": user["username"],
                                  "password": "not-the-password"})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert bootstrap(master_admin, realm) == []


def test_orders_the_login_pages_alternatives(master_admin, realm):
    """Earlier bootstraps updated a step without its priority, which set it to 0: the cookie and the
    form then had one priority, and a database other than H2 could give them back in either order
    (the form first: no single sign-on, and the flow's shape check refused the realm)."""
    master_admin.change_current_realm(realm.realm)
    for step in master_admin.get_authentication_flow_executions("browser-legacy"):
        if step["level"] == 0:  # as the earlier bootstrap wrote them
            master_admin.update_authentication_flow_executions(
                {"id": step["id"], "requirement": step["requirement"]}, "browser-legacy")

    changes = bootstrap(master_admin, realm)

    assert changes == ["ordered browser-legacy forms in browser-legacy"]
    top = [(e.get("providerId") or e["displayName"], e["priority"])
           for e in master_admin.get_authentication_flow_executions("browser-legacy") if e["level"] == 0]
    assert top == [("auth-cookie", 0), ("browser-legacy forms", 1)]
    assert bootstrap(master_admin, realm) == []


def contract(admin, client_id: str) -> dict:
    """What decides a client's token claims: its mappers (its own id aside) and its scopes."""
    uuid = admin.get_client_id(client_id)
    mappers = []
    for mapper in sorted(admin.get_mappers_from_client(uuid), key=lambda m: m["name"]):
        config = dict(mapper["config"])
        if mapper["name"] == "client_id":
            assert config.pop("claim.value") == client_id
        mappers.append((mapper["name"], mapper["protocolMapper"], sorted(config.items())))
    return {"mappers": mappers,
            "default": sorted(s["name"] for s in admin.get_client_default_client_scopes(uuid)),
            "optional": sorted(s["name"] for s in admin.get_client_optional_client_scopes(uuid))}


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_declared_clients_get_the_app_clients_token_contract(master_admin, realm, keycloak_url, kc_user):
    """Each client of IDENTITY_APP_CLIENT_SECRETS is made, confidential, with its secret and the app
    client's mappers and scopes; a second run changes nothing; a new secret is set, never printed."""
    other, secret, new_secret = "partner-app", secrets.token_hex(20), secrets.token_hex(20)
    remember(secret, new_secret)
    settings = replace(realm, app_client_secrets={**realm.app_client_secrets, other: secret})
    master_admin.change_current_realm(realm.realm)
    try:
        changes = bootstrap(master_admin, settings)
        assert changes[0] == f"created client {other}"
        assert all(f"client {other}" in c for c in changes) and not any(secret in c for c in changes)
        assert bootstrap(master_admin, settings) == []
        master_admin.change_current_realm(realm.realm)
        made = master_admin.get_client(master_admin.get_client_id(other))
        assert (made["publicClient"], made["clientAuthenticatorType"], made["secret"]) == \
            (False, "client-secret", secret)
        assert contract(master_admin, other) == contract(master_admin, "mobile") == \
            contract(master_admin, SECRET_CLIENT)

        user = kc_user(password="Partner-Pass-1")
        url = f"{keycloak_url}/realms/{realm.realm}/protocol/openid-connect/token"
        form = {"grant_type": "password", "client_id": other, "username": user["username"],
                "password": "Partner-Pass-1", "scope": "openid"}
        assert requests.post(url, data=form, timeout=30).status_code == 401  # confidential: no secret, no token
        tokens = requests.post(url, data={**form, "client_secret": secret}, timeout=30).json()
        access, identity = claims_of(tokens["access_token"]), claims_of(tokens["id_token"])
        assert (access["client_id"], access["token_use"], access["username"]) == (other, "access", user["username"])
        assert (identity["aud"], identity["token_use"], identity["cognito:username"]) == \
            (other, "id", user["username"])

        changes = bootstrap(master_admin, replace(settings, app_client_secrets={**settings.app_client_secrets,
                                                                                 other: new_secret}))
        assert changes == [f"updated client {other}: secret"]
    finally:
        master_admin.change_current_realm(realm.realm)
        master_admin.delete_client(master_admin.get_client_id(other))


@pytest.mark.parametrize("client_id", ["mobile", "identity-service"])
def test_a_declared_client_cannot_be_the_app_or_admin_client(master_admin, realm, client_id):
    before = snapshot(master_admin, realm.realm)
    with pytest.raises(ValueError, match=client_id):
        bootstrap(master_admin, replace(realm, app_client_secrets={client_id: "x" * 32}))
    assert snapshot(master_admin, realm.realm) == before


def test_realm_settings(master_admin, realm):
    settings = master_admin.get_realm(realm.realm)
    assert "hashAlgorithm(argon2)" in settings["passwordPolicy"]
    assert settings["loginWithEmailAllowed"] is True
    assert settings["ssoSessionIdleTimeout"] == 30 * 24 * 3600
    master_admin.change_current_realm(realm.realm)
    mobile = master_admin.get_client(master_admin.get_client_id("mobile"))
    assert mobile["publicClient"] is True
    assert mobile["attributes"]["pkce.code.challenge.method"] == "S256"
    assert set(realm.app_redirect_uris) == set(mobile["redirectUris"])
    profile = {a["name"] for a in master_admin.get_realm_users_profile()["attributes"]}
    assert {"kii_user_id", "phone_number", "locale"} <= profile


def test_service_account_has_least_privilege(master_admin, realm, keycloak_url):
    master_admin.change_current_realm(realm.realm)
    uuid = master_admin.get_client_id("identity-service")
    account = master_admin.get_client_service_account_user(uuid)
    management = master_admin.get_client_id("realm-management")
    roles = {r["name"] for r in master_admin.get_client_roles_of_user(account["id"], management)}
    assert roles == {"manage-users", "view-realm", "view-events"}  # view-events: why Keycloak refused (docs/sign-in.md)
    assert not master_admin.get_realm_roles_of_user(account["id"]) or all(
        r["name"] != "admin" for r in master_admin.get_realm_roles_of_user(account["id"]))

    token = requests.post(f"{keycloak_url}/realms/{realm.realm}/protocol/openid-connect/token",
                          data={"grant_type": "client_credentials", "client_id": "identity-service",
                                "client_secret": realm.admin_client_secret}, timeout=30).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    base = f"{keycloak_url}/admin/realms/{realm.realm}"
    assert requests.get(f"{base}/users?max=1", headers=headers, timeout=30).status_code == 200
    # Realm administration is refused: it may not change the realm or its clients.
    assert requests.put(base, json={"bruteForceProtected": False}, headers=headers, timeout=30).status_code == 403
    assert requests.get(f"{base}/clients", headers=headers, timeout=30).status_code == 403


def test_cli_reports_up_to_date(app, realm, dev_env, monkeypatch):
    monkeypatch.setenv("IDENTITY_KEYCLOAK_BOOTSTRAP_USERNAME", dev_env["KC_BOOTSTRAP_ADMIN_USERNAME"])
    monkeypatch.setenv("IDENTITY_KEYCLOAK_BOOTSTRAP_PASSWORD", dev_env["KC_BOOTSTRAP_ADMIN_PASSWORD"])
    result = app.test_cli_runner().invoke(args=["keycloak", "bootstrap"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"realm {realm.realm}: already up to date" in result.output
    assert dev_env["KC_BOOTSTRAP_ADMIN_PASSWORD"] not in result.output


def test_wrong_admin_password_fails(realm):
    from identity.keycloak.bootstrap import connect

    with pytest.raises(KeycloakError):
        bootstrap(connect(realm, "admin", "not-the-password"), realm)
