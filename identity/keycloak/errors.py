"""What can go wrong speaking to Keycloak, in the words the rest of the service uses.

Every module of identity/keycloak/ turns python-keycloak's, requests' and libcurl's failures into
these, so a caller handles one small set: Keycloak could not answer (KeycloakUnavailable); it
refused a protocol request (OAuthError), an Admin API request (KeycloakRefused), a password
(PasswordRefused), a grant (GrantRefused) or a new user (UserExists). The bootstrap, an operator's
command, lets python-keycloak's own errors reach the operator as they are.
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


class KeycloakRefused(Exception):
    """Keycloak refused a request the service expects it to take (an HTTP 4xx): the realm's setup or the
    caller's rights are wrong, not the input. Names the call and the status, never the body."""

    def __init__(self, what: str, status: int):
        super().__init__(f"{what}: HTTP {status}")
        self.what, self.status = what, status


class UserExists(Exception):
    """Another user holds the username or email (Keycloak's 409)."""


class GrantRefused(Exception):
    """Keycloak refused a password grant, for `reason`, one of REASONS."""

    REASONS = frozenset({"credentials", "locked", "disabled", "not_confirmed", "reset_required",
                         "new_password_required", "client_not_allowed", "busy",
                         "mfa_required", "mfa_setup", "code_mismatch"})

    def __init__(self, reason: str, user_id: str | None = None):
        assert reason in self.REASONS, reason
        super().__init__(reason)
        self.reason = reason
        # new_password_required, mfa_required, mfa_setup: whose password was right (the challenge's user)
        self.user_id = user_id
