"""Writes imported users into Keycloak: partialImport for new users, full-representation updates.

`partialImport` (one transaction per batch, user ids kept as given) is much
faster than one `POST /users` per user (docs/benchmarks.md has the figures). It needs
the realm's manage-realm role, so the importer signs in as the operator
(the master-realm admin of `identity keycloak bootstrap`), never with the
service's least-privilege client.
"""

from __future__ import annotations

import functools
import json
import logging

import requests
from keycloak import KeycloakAdmin
from keycloak.exceptions import KeycloakConnectionError

from identity.keycloak.errors import KeycloakRefused, KeycloakUnavailable

log = logging.getLogger(__name__)

# Attributes the importer owns; anything else on a user (set by the service or an admin) is kept.
OWNED_PREFIXES = ("custom.",)
OWNED = {"kii_user_id", "phone_number", "phone_number_verified", "locale", "name"}
READ_ONLY = ("kii_user_id", "migration_state", "migration_state_changed_at")


def translated(method):
    """Keycloak not answering, as every module of identity/keycloak/ says it (errors.py)."""

    @functools.wraps(method)
    def call(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except (KeycloakConnectionError, requests.RequestException) as exc:
            raise KeycloakUnavailable(type(exc).__name__) from None

    return call


class KeycloakWriter:
    def __init__(self, admin: KeycloakAdmin, realm: str, service_admin: KeycloakAdmin | None = None):
        self.admin = admin
        self.realm = realm
        # The provider's endpoint takes a token of this realm with manage-users (the service's
        # account), not a master-realm administrator's.
        self.service_admin = service_admin or admin

    def _url(self, path: str) -> str:
        return f"admin/realms/{self.realm}/{path}"

    @translated
    def create(self, users: list[dict]) -> tuple[set[str], set[str]]:
        """Create users (SKIP when they exist). Returns (added ids, skipped ids)."""
        if not users:
            return set(), set()
        response = self.admin.connection.raw_post(
            self._url("partialImport"), data=_json({"ifResourceExists": "SKIP", "users": users}))
        if response.status_code >= 500 and len(users) > 1:
            # Keycloak 26 fails the whole partialImport (NullPointerException) when a user
            # collides with another by email but not by username: fall back to one call per user.
            log.warning("partialImport failed; creating this batch one user at a time",
                        extra={"status": response.status_code, "users": len(users)})
            return self._create_one_by_one(users)
        _raise_for(response, "partialImport")
        added, skipped = set(), set()
        by_name = {u["username"]: u["id"] for u in users}
        for result in response.json().get("results", []):
            # Our id, by username: for a SKIPPED user Keycloak reports the id of whoever holds the name.
            user_id = by_name.get(result.get("resourceName")) or result.get("id")
            (added if result.get("action") == "ADDED" else skipped).add(user_id)
        return added, skipped

    def _create_one_by_one(self, users: list[dict]) -> tuple[set[str], set[str]]:
        # One partialImport per user, not POST /users: that would ignore our ids and drop the
        # read-only Kii userID and migration state.
        added, skipped = set(), set()
        for user in users:
            response = self.admin.connection.raw_post(
                self._url("partialImport"), data=_json({"ifResourceExists": "SKIP", "users": [user]}))
            if response.status_code >= 500 and self._taken(user):
                skipped.add(user["id"])  # the email collision that failed the batch: not ours
                continue
            _raise_for(response, "partialImport of one user")
            results = response.json().get("results", [])
            (added if results and results[0].get("action") == "ADDED" else skipped).add(user["id"])
        return added, skipped

    def _taken(self, user: dict) -> bool:
        """Another Keycloak user holds this user's username or email."""
        for field in ("username", "email"):
            if user.get(field):
                response = self.admin.connection.raw_get(self._url("users"),
                                                         **{field: user[field], "exact": "true"})
                _raise_for(response, "find user")
                if any(found["id"] != user["id"] for found in response.json()):
                    return True
        return False

    @translated
    def set_state(self, user: dict) -> None:
        """Write the Kii userID and migration state through the project's Keycloak provider: the
        realm's user profile makes them read-only, to the Admin API too."""
        attributes = user.get("attributes") or {}
        state = (attributes.get("migration_state") or [None])[0]
        if state is None:
            return
        response = self.service_admin.connection.raw_put(
            f"realms/{self.realm}/legacy-migration/users/{user['id']}/state",
            data=_json({"kii_user_id": attributes["kii_user_id"][0], "state": state}))
        _raise_for(response, "set migration state")

    @translated
    def exists(self, user_id: str) -> bool:
        response = self.admin.connection.raw_get(self._url(f"users/{user_id}"))
        if response.status_code == 404:
            return False
        _raise_for(response, "get user")
        return True

    @translated
    def get(self, user_id: str) -> dict | None:
        response = self.admin.connection.raw_get(self._url(f"users/{user_id}"))
        if response.status_code == 404:
            return None
        _raise_for(response, "get user")
        return response.json()

    @translated
    def users_page(self, first: int, size: int) -> list[dict]:
        """Up to `size` of the realm's users (full representations) from position `first`: a walk over
        every user, a page at a time."""
        response = self.admin.connection.raw_get(self._url("users"), first=first, max=size,
                                                 briefRepresentation="false")
        _raise_for(response, "list users")
        return response.json()

    @translated
    def update(self, desired: dict) -> bool:
        """Bring an existing user to `desired`, keeping attributes the importer does not own."""
        current = self.get(desired["id"])
        if current is None:
            return False
        have = current.get("attributes") or {}
        attributes = {k: v for k, v in have.items() if k not in OWNED and not k.startswith(OWNED_PREFIXES)}
        attributes.update({k: v for k, v in desired["attributes"].items() if k not in READ_ONLY})
        # Read-only in the user profile: sent back exactly as Keycloak has them, or not at all.
        attributes.update({k: have[k] for k in READ_ONLY if k in have})
        merged = {**current, **{k: v for k, v in desired.items() if k not in ("id", "createdTimestamp")},
                  "attributes": attributes}
        if "email" not in desired:
            merged.pop("email", None)
        response = self.admin.connection.raw_put(self._url(f"users/{desired['id']}"), data=_json(merged))
        _raise_for(response, "update user")
        wanted = desired["attributes"]
        if any(wanted.get(k) != have.get(k) for k in ("kii_user_id", "migration_state") if k in wanted):
            self.set_state(desired)
        return True

    @translated
    def delete_user(self, user_id: str) -> None:
        """The user is gone from Keycloak when this returns (already gone is fine)."""
        response = self.admin.connection.raw_delete(self._url(f"users/{user_id}"))
        if response.status_code != 404:  # 404: already gone, as wanted
            _raise_for(response, "delete user")

    @translated
    def disable(self, user_id: str) -> bool:
        current = self.get(user_id)
        if current is None:
            return False
        if current.get("enabled"):
            response = self.admin.connection.raw_put(self._url(f"users/{user_id}"),
                                                     data=_json({**current, "enabled": False}))
            _raise_for(response, "disable user")
        return True


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _raise_for(response, what: str) -> None:
    # The body may quote the request (emails, names): keep it out of the message.
    if response.status_code >= 500:
        raise KeycloakUnavailable(f"{what}: HTTP {response.status_code}")
    if response.status_code >= 400:
        raise KeycloakRefused(what, response.status_code)
