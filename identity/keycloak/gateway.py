"""The Admin API and provider calls the running service makes, each a named method.

Their paths are written here (or in passwords.py) only, and their failures come out as the types of
identity.keycloak.errors: any fault of the call (no answer, a server error, an answer that cannot be
read, a token that cannot be had) is KeycloakUnavailable; a refused password is PasswordRefused; a
taken username or email is UserExists.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Callable

from identity.keycloak import passwords
from identity.keycloak.errors import KeycloakUnavailable, PasswordRefused, UserExists
from identity.metrics import ADMIN_CALLS

log = logging.getLogger(__name__)
PASSED_ON = (KeycloakUnavailable, PasswordRefused, UserExists)


def admin_call(method):
    """One translation of an Admin API call's failure, and its count."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            result = method(self, *args, **kwargs)
        except PASSED_ON as exc:
            ADMIN_CALLS.labels("error" if isinstance(exc, KeycloakUnavailable) else "ok").inc()
            raise
        except Exception as exc:  # python-keycloak's and requests' own errors, or a body that is not JSON
            ADMIN_CALLS.labels("error").inc()
            log.warning("admin API call failed", extra={"error": type(exc).__name__, "call": method.__name__})
            raise KeycloakUnavailable(type(exc).__name__) from None
        ADMIN_CALLS.labels("ok").inc()
        return result

    return call


class KeycloakGateway:
    def __init__(self, admin: Callable, realm: str):
        self._admin = admin   # () -> python-keycloak's admin of the realm (identity.keycloak.admin.AdminSession)
        self.realm = realm

    def _path(self, path: str) -> str:
        return f"admin/realms/{self.realm}/{path}"

    # --- users ---------------------------------------------------------------------------

    @admin_call
    def get_user(self, user_id: str) -> dict:
        return self._admin().get_user(user_id)

    @admin_call
    def find_users(self, *, username: str | None = None, email: str | None = None) -> list[dict]:
        """Users whose username (or email) is exactly this one, as Keycloak stores it (lower case)."""
        query = {"username": username.lower()} if username is not None else {"email": (email or "").lower()}
        return self._admin().get_users({**query, "exact": True})

    def find_user(self, *, username: str | None = None, email: str | None = None) -> dict | None:
        """The one user with that username (or email); None when none or several match."""
        found = self.find_users(username=username, email=email)
        return found[0] if len(found) == 1 else None

    @admin_call
    def create_user(self, representation: dict) -> str:
        try:
            return self._admin().create_user(representation)
        except Exception as exc:
            if getattr(exc, "response_code", None) == 409:  # a race with another sign-up
                raise UserExists() from None
            raise

    @admin_call
    def update_user(self, user_id: str, representation: dict) -> None:
        """Keycloak replaces what it is given: pass the whole representation, or attributes reset."""
        self._admin().update_user(user_id, representation)

    @admin_call
    def delete_user(self, user_id: str) -> None:
        self._admin().delete_user(user_id)

    @admin_call
    def logout_user(self, user_id: str) -> None:
        """End every session of the user (their refresh tokens stop working)."""
        self._admin().user_logout(user_id)

    @admin_call
    def user_page(self, field: str | None, match: str | None, value: str | None, after: str, size: int
                  ) -> tuple[list[tuple[dict, bool]], str | None]:
        """A page of the realm's users in username order after `after`, filtered on one field ("eq" or
        "prefix"): each user's representation and whether they have a password, and the `after` of
        the next page (None on the last). The provider answers it, with Keycloak's indexes
        (keycloak_spi_bridge UserPages)."""
        answer = self._admin().connection.raw_get(f"realms/{self.realm}/legacy-migration/users",
                                                  **self._page_query(field, match, value, after, size))
        if answer.status_code != 200:
            raise KeycloakUnavailable(f"users: HTTP {answer.status_code}")
        body = answer.json()
        return [(entry["user"], bool(entry["password"])) for entry in body["users"]], body.get("next")

    @admin_call
    def user_page_plan(self, field: str | None, match: str | None, value: str | None, after: str, size: int
                       ) -> dict | None:
        """The database's plan (MariaDB's EXPLAIN FORMAT=JSON) of that page's statement; None elsewhere."""
        answer = self._admin().connection.raw_get(f"realms/{self.realm}/legacy-migration/users/plan",
                                                  **self._page_query(field, match, value, after, size))
        if answer.status_code == 501:
            return None
        if answer.status_code != 200:
            raise KeycloakUnavailable(f"users/plan: HTTP {answer.status_code}")
        return json.loads(answer.json()["plan"])

    @staticmethod
    def _page_query(field, match, value, after, size) -> dict:
        query = {"after": after, "max": size}
        if field is not None:
            query.update(field=field, match=match, value=value)
        return query

    # --- groups ---------------------------------------------------------------------------

    @admin_call
    def group_named(self, name: str) -> dict | None:
        """The top-level group of that exact name (Cognito's groups are flat), None when there is none."""
        found = self._admin().connection.raw_get(self._path("groups"), search=name, exact="true",
                                                 briefRepresentation="false")
        if found.status_code != 200:
            raise KeycloakUnavailable(f"groups: HTTP {found.status_code}")
        return next((g for g in found.json() if g.get("name") == name), None)

    @admin_call
    def user_groups(self, user_id: str, first: int, size: int) -> list[dict]:
        return self._admin().get_user_groups(user_id, query={"first": first, "max": size},
                                             brief_representation=False)

    @admin_call
    def add_to_group(self, user_id: str, group_id: str) -> None:
        self._admin().group_user_add(user_id, group_id)

    @admin_call
    def remove_from_group(self, user_id: str, group_id: str) -> None:
        self._admin().group_user_remove(user_id, group_id)

    # --- passwords -----------------------------------------------------------------------

    @admin_call
    def set_password(self, user_id: str, password: str, temporary: bool = False) -> None:
        """A password the user chose (the realm's policy applies); PasswordRefused when it refuses."""
        passwords.set_password(self._admin(), self.realm, user_id, password, temporary)

    @admin_call
    def remove_password(self, user_id: str) -> None:
        """The user has no password from now on (an administrator's reset: a new one by code only)."""
        admin = self._admin()
        for credential in admin.get_credentials(user_id):
            if credential.get("type") == "password":
                admin.delete_credential(user_id, credential["id"])

    @admin_call
    def set_migration_state(self, user_id: str, kii_user_id: str, state: str) -> None:
        """A Kii user's read-only migration state in Keycloak ("pending", "reset_required"), through the
        provider; a migrated user stays migrated."""
        answer = self._admin().connection.raw_put(f"realms/{self.realm}/legacy-migration/users/{user_id}/state",
                                                  data=json.dumps({"kii_user_id": kii_user_id, "state": state}))
        if answer.status_code != 204:
            raise KeycloakUnavailable(f"state: HTTP {answer.status_code}")

    @admin_call
    def migrate_password(self, user_id: str, password: str, ticket_for: str | None) -> tuple[bool, str | None]:
        """A legacy password checked by the service, through the project's provider
        (passwords.migrate_password says what the answer means)."""
        return passwords.migrate_password(self._admin(), self.realm, user_id, password, ticket_for)

    @admin_call
    def password_set_at_keycloak(self, user_id: str) -> bool:
        """The user chose a password at Keycloak's own pages since the import (the provider marked
        them migrated there): Keycloak holds the password, not the legacy store."""
        user = self._admin().get_user(user_id)
        return (user.get("attributes") or {}).get("migration_state") == ["migrated"]

    @admin_call
    def password_credential(self, user_id: str) -> dict | None:
        """The user's Keycloak password credential (`id`, `createdDate` in ms): a new one each time the
        password is set. None without a password."""
        credentials = self._admin().get_credentials(user_id)
        return next(({"id": c.get("id"), "createdDate": c.get("createdDate")} for c in credentials
                     if c.get("type") == "password"), None)

    @admin_call
    def sign_in_ticket(self, user_id: str, client_id: str, code_checked: bool = False) -> str:
        return passwords.sign_in_ticket(self._admin(), self.realm, user_id, client_id, code_checked)

    @admin_call
    def session_alive(self, user_id: str, session_id: str, client_id: str) -> bool:
        """Whether an access token's session still stands (what Keycloak's userinfo would say)."""
        return passwords.session_alive(self._admin(), self.realm, user_id, session_id, client_id)

    # --- authenticator apps (Keycloak's OTP credentials) ----------------------------------

    @admin_call
    def software_tokens(self, user_id: str) -> list[dict]:
        """The user's authenticator apps: Keycloak's OTP credentials (`id`, `userLabel`, `createdDate`)."""
        return [{"id": c.get("id"), "userLabel": c.get("userLabel"), "createdDate": c.get("createdDate")}
                for c in self._admin().get_credentials(user_id) if c.get("type") == "otp"]

    @admin_call
    def set_software_token(self, user_id: str, secret: str, code: str, label: str | None) -> bool:
        return passwords.set_software_token(self._admin(), self.realm, user_id, secret, code, label)

    @admin_call
    def remove_software_tokens(self, user_id: str) -> None:
        admin = self._admin()
        for credential in admin.get_credentials(user_id):
            if credential.get("type") == "otp":
                admin.delete_credential(user_id, credential["id"])

    # --- brute-force detection -----------------------------------------------------------

    @admin_call
    def record_failed_login(self, user_id: str) -> None:
        passwords.record_failed_login(self._admin(), self.realm, user_id)


    @admin_call
    def last_login_error(self, user_id: str, client_id: str) -> dict | None:
        """The newest LOGIN_ERROR event of the user at the client, None when there is none."""
        events = self._admin().connection.raw_get(self._path("events"), user=user_id, client=client_id,
                                                  type="LOGIN_ERROR", max=1).json()
        return events[0] if events else None

    @admin_call
    def brute_force_status(self, user_id: str) -> dict:
        """Keycloak's brute-force bookkeeping of the user (``disabled``: locked out now), as it answers."""
        return self._admin().connection.raw_get(self._path(f"attack-detection/brute-force/users/{user_id}")).json()

    @admin_call
    def clear_brute_force(self, user_id: str) -> None:
        """Forget the user's failed attempts (a locked-out user starts afresh)."""
        self._admin().connection.raw_delete(self._path(f"attack-detection/brute-force/users/{user_id}"))
