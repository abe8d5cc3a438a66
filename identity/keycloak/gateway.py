"""The Admin API calls the Cognito operations make beyond python-keycloak's own methods, by name.

Their paths are written here only. Errors are python-keycloak's and requests' as they come: each
caller keeps deciding what a failure means to it.
"""

from __future__ import annotations


class KeycloakGateway:
    def __init__(self, admin, realm: str):
        self.admin = admin   # a python-keycloak admin of the service's realm
        self.realm = realm

    def _path(self, path: str) -> str:
        return f"admin/realms/{self.realm}/{path}"

    def last_login_error(self, user_id: str, client_id: str) -> dict | None:
        """The newest LOGIN_ERROR event of the user at the client, None when there is none."""
        events = self.admin.connection.raw_get(self._path("events"), user=user_id, client=client_id,
                                               type="LOGIN_ERROR", max=1).json()
        return events[0] if events else None

    def brute_force_status(self, user_id: str):
        """Keycloak's brute-force bookkeeping of the user (``disabled``: locked out now), as it answers."""
        return self.admin.connection.raw_get(self._path(f"attack-detection/brute-force/users/{user_id}")).json()

    def clear_brute_force(self, user_id: str) -> None:
        """Forget the user's failed attempts (a locked-out user starts afresh)."""
        self.admin.connection.raw_delete(self._path(f"attack-detection/brute-force/users/{user_id}"))
