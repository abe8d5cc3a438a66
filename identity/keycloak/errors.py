"""What can go wrong speaking to Keycloak, in the words the rest of the service uses.

Every module of identity/keycloak/ turns python-keycloak's, requests' and libcurl's failures into
these, so a caller handles one small set: Keycloak could not answer (KeycloakUnavailable), refused
a protocol request (OAuthError), refused a password (PasswordRefused), a grant (GrantRefused) or a
new user (UserExists).
"""

from __future__ import annotations

from dataclasses import dataclass


class KeycloakUnavailable(Exception):
    """Keycloak did not answer, or answered with a server error (or an answer the service cannot use)."""


@dataclass
class OAuthError(Exception):
    status: int
    error: str
    description: str

    def __str__(self) -> str:
        return f"{self.error}: {self.description}"


class PasswordRefused(Exception):
    """The realm's password policy refused a password; `error` is Keycloak's message key."""

    def __init__(self, error: str):
        super().__init__(error)
        self.error = error


class UserExists(Exception):
    """Another user holds the username or email (Keycloak's 409)."""


class GrantRefused(Exception):
    """Keycloak refused a password grant, for `reason`, one of REASONS."""

    REASONS = frozenset({"credentials", "locked", "disabled", "not_confirmed", "reset_required",
                         "client_not_allowed", "busy"})

    def __init__(self, reason: str):
        assert reason in self.REASONS, reason
        super().__init__(reason)
        self.reason = reason
