"""First-login migration tickets: Keycloak's proof, for one token request, that it has just stored a
checked legacy password (keycloak_spi_bridge's MigrationTicket and the direct-grant flow's step)."""

from __future__ import annotations

import secrets
import time

import pytest
import requests

from identity.keycloak.oidc import OIDC, OAuthError
from identity.keycloak.passwords import migrate_password
from tests.busy import settled
from tests.cognito.test_sign_in import sign_in
from tests.test_metrics import sample
from tests.used_secrets import remember

PASSWORD = "Kii-Old-Pass-1"


@pytest.fixture
def oidc(keycloak_url, realm) -> OIDC:
    return OIDC(keycloak_url, realm.realm, keycloak_url, 10)


@pytest.fixture
def migrate(app_ctx, realm):
    from identity.keycloak import keycloak

    def call(user: dict, ticket_for: str | None = "mobile"):
        moved, ticket = migrate_password(keycloak.admin, realm.realm, user["id"], PASSWORD, ticket_for)
        remember(ticket)  # the suite's logs are scanned for it (tests/session_checks.py)
        return moved, ticket

    return call


def refused(call) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        call()
    assert caught.value.error == "invalid_grant"
    return caught.value


def test_a_ticket_stands_for_the_password_once(oidc, migrate, kc_user, master_admin):
    user = kc_user()
    moved, ticket = migrate(user)
    assert moved and isinstance(ticket, str) and len(ticket) == 43
    tokens = oidc.password_grant("mobile", None, user["username"], PASSWORD, migration_ticket=ticket)
    assert tokens["access_token"] and tokens["id_token"] and tokens["refresh_token"]
    # Spent: a second request with it fails, and does not fall back to the (right) password. (A refusal
    # only because Keycloak still recorded the login is retried: it would prove nothing.)
    refused(lambda: settled(lambda: oidc.password_grant("mobile", None, user["username"], PASSWORD,
                                                        migration_ticket=ticket), master_admin, user["id"]))
    assert settled(lambda: oidc.password_grant("mobile", None, user["username"], PASSWORD),
                   master_admin, user["id"])["access_token"]


def test_another_users_forged_or_oversized_ticket_is_refused(oidc, migrate, kc_user, master_admin):
    owner, other = kc_user(), kc_user()
    _, ticket = migrate(owner)
    migrate(other, ticket_for=None)

    def try_ticket(user: dict, value: str):
        # Each refusal judged on the ticket, not because Keycloak still recorded the previous one.
        refused(lambda: settled(lambda: oidc.password_grant("mobile", None, user["username"], PASSWORD,
                                                            migration_ticket=value), master_admin, user["id"]))

    try_ticket(other, ticket)
    # One attempt per ticket: the wrong user's try spent it for its owner too.
    try_ticket(owner, ticket)
    try_ticket(other, secrets.token_urlsafe(32))
    try_ticket(other, "x" * 4000)


def test_another_clients_ticket_is_refused(oidc, migrate, kc_user):
    user = kc_user()
    _, ticket = migrate(user, ticket_for="another-app")
    refused(lambda: oidc.password_grant("mobile", None, user["username"], PASSWORD, migration_ticket=ticket))


def test_a_ticket_expires(oidc, migrate, kc_user):
    user = kc_user()
    _, ticket = migrate(user)
    time.sleep(31)  # MigrationTicket.LIFESPAN_SECONDS is 30
    refused(lambda: oidc.password_grant("mobile", None, user["username"], PASSWORD, migration_ticket=ticket))


def test_tickets_only_when_asked_and_only_when_the_password_moved(migrate, kc_user):
    assert migrate(kc_user(), ticket_for=None) == (True, None)
    assert migrate(kc_user(password="Keycloak-Pass-1")) == (False, None)  # a password set at Keycloak stays


def test_the_realm_uses_the_flow_with_the_ticket_step(master_admin, realm):
    master_admin.change_current_realm(realm.realm)
    assert master_admin.get_realm(realm.realm)["directGrantFlow"] == "direct-grant-legacy"
    steps = {e.get("providerId") or e["displayName"]: e["requirement"]
             for e in master_admin.get_authentication_flow_executions("direct-grant-legacy")}
    assert steps["direct-grant-validate-username"] == "REQUIRED"
    assert steps["legacy-migration-ticket-or-password"] == "REQUIRED"
    assert steps["direct-grant-legacy conditional OTP"] == "CONDITIONAL"
    assert steps["legacy-direct-grant-otp"] == "REQUIRED"


def test_the_services_first_sign_in_uses_a_ticket(cognito, live_service, legacy_user):
    url = live_service["url"] + "/metrics"

    def count(result: str) -> float:
        try:
            return sample(requests.get(url, timeout=10).text, "identity_migration_tickets_total", result=result)
        except AssertionError:
            return 0.0

    used, spurned = count("used"), count("refused")
    user = legacy_user()
    assert sign_in(cognito, user["username"], user["password"])["AuthenticationResult"]["AccessToken"]
    assert count("used") == used + 1 and count("refused") == spurned
    # The next sign-in is an ordinary one: Keycloak checks the password it now holds.
    assert sign_in(cognito, user["username"], user["password"])["AuthenticationResult"]["AccessToken"]
    assert count("used") == used + 1


def test_a_refused_ticket_falls_back_to_the_password_once(app, kc_user):
    """The service's side: Keycloak refusing the ticket itself (here a forged one) is not the user's
    fault; the password, which Keycloak holds by then, decides, and a wrong one is still refused."""
    from identity.keycloak.errors import GrantRefused

    with app.app_context():
        grants = app.extensions["cognito"].service.sign_in.grants
    user = kc_user(password=PASSWORD)
    tokens = grants.grant("mobile", None, user["username"], PASSWORD, user["id"], ticket=secrets.token_urlsafe(32))
    assert tokens["access_token"]
    with pytest.raises(GrantRefused) as refused:
        grants.grant("mobile", None, user["username"], "not-the-password", user["id"],
                     ticket=secrets.token_urlsafe(32))
    assert refused.value.reason == "credentials"
