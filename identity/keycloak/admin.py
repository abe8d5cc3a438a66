"""The service account's Admin API connection: one per process, its token reused."""

from __future__ import annotations

import os
import threading

from keycloak import KeycloakAdmin, KeycloakOpenIDConnection


class AdminSession:
    """Calling it gives python-keycloak's admin of the realm. The token is fetched once with the
    service account's client credentials and reused until python-keycloak sees it near expiry, so a
    request never pays for a token round trip of its own. A new one after a fork: a connection pool
    must not be shared across processes."""

    def __init__(self, url: str, realm: str, client_id: str, client_secret: str | None, timeout: float):
        self.url, self.realm, self.client_id = url, realm, client_id
        self._secret, self._timeout = client_secret, timeout
        self._lock = threading.Lock()
        self._admin: tuple[int, KeycloakAdmin] | None = None

    def __call__(self) -> KeycloakAdmin:
        with self._lock:
            if self._admin is None or self._admin[0] != os.getpid():
                connection = KeycloakOpenIDConnection(
                    server_url=self.url + "/", realm_name=self.realm, user_realm_name=self.realm,
                    client_id=self.client_id, client_secret_key=self._secret, grant_type="client_credentials",
                    timeout=self._timeout, verify=True)
                self._admin = (os.getpid(), KeycloakAdmin(connection=connection))
            return self._admin[1]

    @classmethod
    def from_config(cls, cfg) -> "AdminSession":
        return cls(cfg["KEYCLOAK_URL"], cfg["KEYCLOAK_REALM"], cfg["KEYCLOAK_ADMIN_CLIENT_ID"],
                   cfg["KEYCLOAK_ADMIN_CLIENT_SECRET"], cfg["KEYCLOAK_TIMEOUT"])
