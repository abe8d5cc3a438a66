"""Giving Keycloak a user's password (first-login migration, resets).

Keycloak hashes it itself (argon2, the realm's policy). The first-login migration goes through the
project's provider (`keycloak_spi_bridge`, /realms/{realm}/legacy-migration): one call sets the
password and the user's read-only migration state in one transaction, never overwrites a password
the user set at Keycloak meanwhile, and stores a legacy password the realm's policy for *new*
passwords refuses (too short, say) all the same, since it was valid where the user chose it. Only
the service's own client may call it (the bootstrap names it to the realm; docs/bridge.md), and a
reset at Keycloak at the same moment leaves one password, the reset's.
Resets (the user chose a new password) use the Admin API and its policy.
"""

from __future__ import annotations

import json

import requests
from keycloak.exceptions import KeycloakConnectionError

from identity.keycloak.errors import KeycloakUnavailable, PasswordRefused

__all__ = ["PasswordRefused", "migrate_password", "set_password"]


def _call(method, *args, **kwargs):
    try:
        response = method(*args, **kwargs)
    except (KeycloakConnectionError, requests.RequestException) as exc:
        raise KeycloakUnavailable(type(exc).__name__) from None
    if response.status_code >= 500:
        raise KeycloakUnavailable(f"HTTP {response.status_code}")
    return response


def _error(response) -> str:
    try:
        return str(response.json().get("error", ""))
    except ValueError:
        return ""


def migrate_password(admin, realm: str, user_id: str, password: str,
                     ticket_for: str | None = None) -> tuple[bool, str | None]:
    """(True, ticket): Keycloak holds the legacy `password` now; the ticket (asked for with
    `ticket_for`, a client id) stands for it in that client's token request that follows, once,
    within 30 s. (False, None): the user already has a Keycloak password (set elsewhere since the
    import), left as it is."""
    body = {"password": password, **({"ticket_for_client": ticket_for} if ticket_for else {})}
    response = _call(admin.connection.raw_post, f"realms/{realm}/legacy-migration/users/{user_id}/password",
                     data=json.dumps(body))
    if response.status_code == 204:
        return True, None
    if response.status_code == 200:
        try:
            ticket = response.json().get("ticket")
        except ValueError:
            ticket = None
        return True, ticket if isinstance(ticket, str) and ticket else None
    if response.status_code == 409:
        return False, None
    raise PasswordRefused(_error(response) or f"HTTP {response.status_code}")


def set_password(admin, realm: str, user_id: str, password: str, temporary: bool = False) -> None:
    """Keycloak holds `password` for the user when this returns (a reset: the realm's policy applies);
    `temporary`: to be replaced at the next sign-in (Keycloak's UPDATE_PASSWORD)."""
    connection = admin.connection
    response = _call(connection.raw_put, f"admin/realms/{realm}/users/{user_id}/reset-password",
                     data=json.dumps({"type": "password", "value": password, "temporary": temporary}))
    if response.status_code == 204:
        return
    raise PasswordRefused(_error(response) or f"HTTP {response.status_code}")


def sign_in_ticket(admin, realm: str, user_id: str, client_id: str, code_checked: bool = False) -> str:
    """A single-use ticket standing for the user's password in `client_id`'s token request that follows
    (the service proved the password itself: SRP). The provider mints it for the service's account only.
    `code_checked`: the service checked the user's one-time code in this sign-in too (it set their
    authenticator app up), so Keycloak asks none."""
    body = {"ticket_for_client": client_id, **({"code_checked": True} if code_checked else {})}
    response = _call(admin.connection.raw_post, f"realms/{realm}/legacy-migration/users/{user_id}/ticket",
                     data=json.dumps(body))
    try:
        ticket = response.json().get("ticket") if response.status_code == 200 else None
    except ValueError:
        ticket = None
    if not isinstance(ticket, str) or not ticket:
        raise KeycloakUnavailable(f"ticket: HTTP {response.status_code}")
    return ticket


def set_software_token(admin, realm: str, user_id: str, secret: str, code: str, label: str | None) -> bool:
    """The user's authenticator app, as Keycloak's OTP credential of `secret` (the provider checks
    `code` against it first, under the realm's OTP policy, and replaces any app the user had). False
    when the code does not match: nothing changed."""
    body = {"secret": secret, "code": code, **({"label": label} if label else {})}
    response = _call(admin.connection.raw_post,
                     f"realms/{realm}/legacy-migration/users/{user_id}/software-token", data=json.dumps(body))
    if response.status_code == 204:
        return True
    if response.status_code == 400 and _error(response) == "invalid_code":
        return False
    raise KeycloakUnavailable(f"software-token: HTTP {response.status_code}")


def session_alive(admin, realm: str, user_id: str, session_id: str, client_id: str) -> bool:
    """The user's Keycloak session is alive, the user enabled, and signed in to `client_id`."""
    response = _call(admin.connection.raw_post, f"realms/{realm}/legacy-migration/users/{user_id}/session",
                     data=json.dumps({"session": session_id, "client": client_id}))
    if response.status_code == 204:
        return True
    if response.status_code in (400, 404):   # (400: not a session id the provider would look up)
        return False
    raise KeycloakUnavailable(f"session: HTTP {response.status_code}")


def record_failed_login(admin, realm: str, user_id: str) -> None:
    """A wrong password the service judged (SRP), counted by Keycloak's brute-force detection."""
    response = _call(admin.connection.raw_post, f"realms/{realm}/legacy-migration/users/{user_id}/failed-login",
                     data="{}")
    if response.status_code != 204:
        raise KeycloakUnavailable(f"failed-login: HTTP {response.status_code}")
