"""The migration state in Keycloak: read-only attributes an admin sees and searches by, kept true on
every transition (first login through the JSON API and at the login page, resets at the service and
at Keycloak), by the project's provider, in the same call or transaction as the password."""

from __future__ import annotations

import json

import pytest
import requests
from botocore.exceptions import ClientError

from identity.legacy.models import MigrationState
from tests.bridge.test_bridge import login_page
from tests.cognito.fixtures import store_row
from tests.cognito.test_sign_in import sign_in
from tests.conftest import TEST_REALM


def state_of(master_admin, user_id: str) -> tuple[str | None, str | None]:
    master_admin.change_current_realm(TEST_REALM)
    attributes = master_admin.get_user(user_id).get("attributes") or {}
    return (attributes.get("migration_state") or [None])[0], (attributes.get("migration_state_changed_at") or [None])[0]


def test_first_login_through_the_api_marks_the_user_migrated(cognito, legacy_user, master_admin):
    user = legacy_user(password="Kii-State-Pass-1")
    assert state_of(master_admin, user["id"])[0] == "pending"
    sign_in(cognito, user["username"], "Kii-State-Pass-1")
    state, changed_at = state_of(master_admin, user["id"])
    assert state == "migrated" and changed_at and changed_at.endswith("Z")


def test_first_login_at_the_login_page_marks_the_user_migrated(live_service, legacy_user, master_admin):
    user = legacy_user(password="Kii-State-Pass-2")
    response, _ = login_page(live_service, user["username"], "Kii-State-Pass-2")
    assert response.status_code == 302
    assert state_of(master_admin, user["id"])[0] == "migrated"


def test_a_reset_through_the_service_marks_the_user_migrated(cognito, smtp, legacy_user, master_admin):
    user = legacy_user(state=MigrationState.reset_required, email="state-reset@example.com")
    assert state_of(master_admin, user["id"])[0] == "reset_required"
    cognito.forgot_password(ClientId="mobile", Username="state-reset@example.com")
    cognito.confirm_forgot_password(ClientId="mobile", Username="state-reset@example.com",
                                    ConfirmationCode=smtp.code_for("state-reset@example.com"),
                                    Password="New-State-Pass-1")
    assert state_of(master_admin, user["id"])[0] == "migrated"


def test_a_password_set_at_keycloak_wins_over_the_legacy_one(cognito, live_service, legacy_user, master_admin):
    """The user reset their password at Keycloak's own pages (here: an admin's reset, which Keycloak's
    provider sees the same way): the new one works through the API, the old one no longer does and
    never replaces it, and the legacy hash is gone."""
    user = legacy_user(password="Kii-Old-State-1")
    master_admin.change_current_realm(TEST_REALM)
    master_admin.set_user_password(user["id"], "Chosen-At-Keycloak-1", temporary=False)
    assert state_of(master_admin, user["id"])[0] == "migrated"
    assert store_row(live_service["app"], user["kii_user_id"]).state == MigrationState.pending

    with pytest.raises(ClientError) as info:
        sign_in(cognito, user["username"], "Kii-Old-State-1")  # the legacy hash matches, Keycloak says no
    assert info.value.response["Error"]["Code"] == "NotAuthorizedException"
    row = store_row(live_service["app"], user["kii_user_id"])
    assert row.state == MigrationState.migrated and row.password_hash is None
    assert sign_in(cognito, user["username"], "Chosen-At-Keycloak-1")["AuthenticationResult"]


def test_the_new_password_works_while_the_store_still_says_pending(cognito, live_service, legacy_user, master_admin):
    user = legacy_user(password="Kii-Old-State-2")
    master_admin.change_current_realm(TEST_REALM)
    master_admin.set_user_password(user["id"], "Chosen-At-Keycloak-2", temporary=False)
    assert sign_in(cognito, user["username"], "Chosen-At-Keycloak-2")["AuthenticationResult"]
    row = store_row(live_service["app"], user["kii_user_id"])
    assert row.state == MigrationState.migrated and row.password_hash is None


def test_the_state_is_read_only_and_searchable(legacy_user, master_admin):
    user = legacy_user()
    master_admin.change_current_realm(TEST_REALM)
    found = master_admin.get_users({"q": f"kii_user_id:{user['kii_user_id']}"})
    assert [u["id"] for u in found] == [user["id"]]
    assert user["id"] in [u["id"] for u in master_admin.get_users({"q": "migration_state:pending", "max": 1000})]
    current = master_admin.get_user(user["id"])
    for name, value in (("migration_state", "migrated"), ("kii_user_id", "kii-forged")):
        response = master_admin.connection.raw_put(
            f"admin/realms/{TEST_REALM}/users/{user['id']}",
            data=json.dumps({**current, "attributes": {**current["attributes"], name: [value]}}))
        assert response.status_code == 400 and "read-only" in response.text, (name, response.text)
    assert state_of(master_admin, user["id"])[0] == "pending"


def test_the_provider_endpoint_refuses_anonymous_and_ordinary_users(keycloak_url, legacy_user, kc_user):
    user = legacy_user()
    url = f"{keycloak_url}/realms/{TEST_REALM}/legacy-migration/users/{user['id']}/password"
    assert requests.post(url, json={"password": "Anything-1"}, timeout=10).status_code == 401
    nobody = kc_user(password="Plain-User-Pass-1")

    def token_of(client_id: str) -> str:
        return requests.post(f"{keycloak_url}/realms/{TEST_REALM}/protocol/openid-connect/token", timeout=10, data={
            "grant_type": "password", "client_id": client_id, "username": nobody["username"],
            "password": "Plain-User-Pass-1", "scope": "openid"}).json()["access_token"]

    # An app token names Cognito's issuer, which Keycloak takes from no bearer: not even authenticated.
    app_token = token_of("mobile")
    assert requests.post(url, json={"password": "Anything-1"}, timeout=10,
                         headers={"Authorization": f"Bearer {app_token}"}).status_code == 401
    # A token of Keycloak's own issuer (admin-cli): the user is known, and refused.
    token = token_of("admin-cli")
    answer = requests.post(url, json={"password": "Anything-1"}, timeout=10,
                           headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403
    state = requests.put(url.replace("/password", "/state"), json={"kii_user_id": "x", "state": "pending"},
                         timeout=10, headers={"Authorization": f"Bearer {token}"})
    assert state.status_code == 403
