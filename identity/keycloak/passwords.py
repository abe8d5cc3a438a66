"""Giving Keycloak a user's password (first-login migration, resets).

Keycloak hashes it itself (argon2, the realm's policy). One exception: a
legacy password that the realm's policy for *new* passwords refuses (too
short, say) was valid where the user set it, so it is stored anyway, as a
credential in Keycloak's own argon2 format with Keycloak's default
parameters; Keycloak verifies it like any other and re-hashes it if the
policy's algorithm ever changes.
"""

from __future__ import annotations

import base64
import json
import os

import requests
from argon2.low_level import Type, hash_secret_raw
from keycloak.exceptions import KeycloakConnectionError

from identity.keycloak.oidc import KeycloakUnavailable

# Keycloak 26's argon2 provider defaults: id, v1.3, 7168 KiB, 5 iterations, 1 lane, 32 bytes.
KEYCLOAK_ARGON2 = {"time_cost": 5, "memory_cost": 7168, "parallelism": 1, "hash_len": 32}


class PasswordRefused(Exception):
    def __init__(self, error: str):
        super().__init__(error)
        self.error = error


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


def set_password(admin, realm: str, user_id: str, password: str, legacy: bool = False) -> None:
    """Keycloak holds `password` for the user when this returns (idempotent)."""
    connection = admin.connection
    response = _call(connection.raw_put, f"admin/realms/{realm}/users/{user_id}/reset-password",
                     data=json.dumps({"type": "password", "value": password, "temporary": False}))
    if response.status_code == 204:
        return
    error = _error(response)
    if response.status_code == 400 and error.startswith("invalidPassword") and legacy:
        _store_prehashed(connection, realm, user_id, password)
        return
    raise PasswordRefused(error or f"HTTP {response.status_code}")


def _store_prehashed(connection, realm: str, user_id: str, password: str) -> None:
    salt = os.urandom(16)
    digest = hash_secret_raw(password.encode(), salt, type=Type.ID, version=19, **KEYCLOAK_ARGON2)
    credential = {
        "type": "password",
        "credentialData": json.dumps({"hashIterations": KEYCLOAK_ARGON2["time_cost"], "algorithm": "argon2",
                                      "additionalParameters": {
                                          "hashLength": [str(KEYCLOAK_ARGON2["hash_len"])],
                                          "memory": [str(KEYCLOAK_ARGON2["memory_cost"])], "type": ["id"],
                                          "version": ["1.3"], "parallelism": [str(KEYCLOAK_ARGON2["parallelism"])]}}),
        "secretData": json.dumps({"value": base64.b64encode(digest).decode(),
                                  "salt": base64.b64encode(salt).decode(), "additionalParameters": {}}),
    }
    user = _call(connection.raw_get, f"admin/realms/{realm}/users/{user_id}")
    if user.status_code != 200:
        raise PasswordRefused(f"user lookup: HTTP {user.status_code}")
    response = _call(connection.raw_put, f"admin/realms/{realm}/users/{user_id}",
                     data=json.dumps({**user.json(), "credentials": [credential]}))
    if response.status_code != 204:
        raise PasswordRefused(_error(response) or f"HTTP {response.status_code}")
