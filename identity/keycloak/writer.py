"""Writes imported users into Keycloak through the project's provider (`POST .../users/bulk`): one
transaction per batch through Keycloak's own user model, at the database's pace rather than the Admin
API's representation layer (docs/benchmarks.md has the figures). The service's own account calls it;
nothing here needs a realm administrator.
"""

from __future__ import annotations

import functools
import json
import logging
import time

import requests
from keycloak import KeycloakAdmin
from keycloak.exceptions import KeycloakConnectionError

from identity.keycloak.errors import KeycloakRefused, KeycloakUnavailable

log = logging.getLogger(__name__)

# Read-only in the realm's user profile: the provider writes them (keycloak_spi_bridge MigrationState).
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


BULK_TIMEOUT_S = 300   # a batch is one transaction: under load it may take far longer than a sign-in's call
BULK_ATTEMPTS = 3


class KeycloakWriter:
    def __init__(self, admin: KeycloakAdmin, realm: str):
        # The service's own account (manage-users): the provider's bulk endpoint answers it alone.
        self.admin = admin
        self.realm = realm

    def _url(self, path: str) -> str:
        return f"admin/realms/{self.realm}/{path}"

    @translated
    def write(self, representations: list[dict]) -> dict[str, tuple[str, str | None]]:
        """Create or bring up to date these users (importer representations, profile.to_keycloak) in one
        transaction of the project's provider: by user id, (outcome, reason) with outcome "created",
        "updated", "unchanged" or "refused" (reason "username_taken", "email_taken", ...). Idempotent:
        a batch cut off midway is sent again whole."""
        if not representations:
            return {}
        body = _json({"users": [bulk_entry(rep) for rep in representations]})
        connection = self.admin.connection
        connection.timeout = max(connection.timeout or 0, BULK_TIMEOUT_S)
        for attempt in range(1, BULK_ATTEMPTS + 1):
            response = connection.raw_post(f"realms/{self.realm}/legacy-migration/users/bulk", data=body)
            # 409: another transaction wrote one of these users meanwhile (a retried request still running
            # in Keycloak): nothing of this one was kept, and the batch is idempotent, so it goes again.
            if response.status_code != 409 or attempt == BULK_ATTEMPTS:
                break
            log.warning("bulk write met a concurrent write of the same users; sending the batch again",
                        extra={"users": len(representations), "attempt": attempt})
            time.sleep(attempt)
        _raise_for(response, "bulk users")
        return {answer["id"]: (answer["outcome"], answer.get("reason")) for answer in response.json()["results"]}

    @translated
    def plans(self, representations: list[dict]) -> dict[str, dict]:
        """The database's plan (MariaDB's EXPLAIN FORMAT=JSON) of each lookup the provider makes for this
        batch, by name ("ids", "usernames", "emails"); nothing is written. KeycloakRefused on a database
        that cannot explain (HTTP 501)."""
        body = _json({"users": [bulk_entry(rep) for rep in representations]})
        response = self.admin.connection.raw_post(f"realms/{self.realm}/legacy-migration/users/bulk/plan", data=body)
        _raise_for(response, "bulk plan")
        return {name: json.loads(plan) for name, plan in response.json().items()}

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
    def compact_page(self, after: str | None, size: int, to: str | None = None) -> tuple[list[dict], str | None]:
        """Up to `size` (1..10000) of the realm's users in id order after the id `after` (None: from the
        first) and up to `to` inclusive (None: to the last), each as {"id", "username", "email", "enabled",
        "emailVerified", "password", "attributes"} (the provider's `users/compact`, read in straight SQL:
        verify's walk over every user); and the `after` of the next page, None on the last. Service
        accounts are not listed."""
        bounds = {name: value for name, value in (("after", after), ("to", to)) if value}
        response = self.admin.connection.raw_get(f"realms/{self.realm}/legacy-migration/users/compact", max=size,
                                                 **bounds)
        _raise_for(response, "compact users")
        answer = response.json()
        return answer["users"], answer.get("next")

    @translated
    def delete_user(self, user_id: str) -> None:
        """The user is gone from Keycloak when this returns (already gone is fine)."""
        response = self.admin.connection.raw_delete(self._url(f"users/{user_id}"))
        if response.status_code != 404:  # 404: already gone, as wanted
            _raise_for(response, "delete user")

    @translated
    def disable_many(self, user_ids: list[str]) -> dict[str, str]:
        """Disable these users (1..1000 Keycloak ids) in one transaction of the project's provider
        (`users/disable`): by user id, "disabled", "unchanged" (disabled already) or "missing" (no such
        user). Idempotent: a batch cut off midway is sent again whole."""
        if not user_ids:
            return {}
        body = _json({"ids": list(dict.fromkeys(user_ids))})   # an id given twice is sent once
        connection = self.admin.connection
        connection.timeout = max(connection.timeout or 0, BULK_TIMEOUT_S)
        response = connection.raw_post(f"realms/{self.realm}/legacy-migration/users/disable", data=body)
        _raise_for(response, "disable users")
        return {answer["id"]: answer["outcome"] for answer in response.json()["results"]}

def bulk_entry(representation: dict) -> dict:
    """An importer representation as the provider's bulk endpoint takes it: the read-only migration
    attributes apart (only the provider writes them), the importer's own attributes as they are."""
    attributes = representation.get("attributes") or {}
    entry = {"id": representation["id"], "username": representation["username"],
             "enabled": representation.get("enabled", True), "emailVerified": bool(representation.get("emailVerified")),
             "attributes": {k: v for k, v in attributes.items() if k not in READ_ONLY}}
    for name in ("email", "firstName", "lastName", "createdTimestamp"):
        if representation.get(name) is not None:
            entry[name] = representation[name]
    for name in ("kii_user_id", "migration_state"):
        if attributes.get(name):
            entry[name] = attributes[name][0]
    return entry


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _raise_for(response, what: str) -> None:
    # The body may quote the request (emails, names): keep it out of the message.
    if response.status_code >= 500:
        raise KeycloakUnavailable(f"{what}: HTTP {response.status_code}")
    if response.status_code >= 400:
        raise KeycloakRefused(what, response.status_code)
