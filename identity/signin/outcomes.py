"""What a sign-in came to. The adapters (identity.cognito, identity.bridge) map each to their answer."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Result(enum.Enum):
    SIGNED_IN = "success"                 # tokens issued
    MIGRATED = "migrated"                 # the legacy password was right; Keycloak holds it now
    KEYCLOAK_JUDGES = "already_migrated"  # Keycloak holds the user's password: only it can judge this one
    WRONG_PASSWORD = "wrong_password"     # or an unknown user: the same answer
    LOCKED = "locked"                     # too many wrong passwords for the user
    THROTTLED = "throttled"               # too many failures from the client's address
    RESET_REQUIRED = "reset_required"
    NEW_PASSWORD_REQUIRED = "new_password_required"  # a right but temporary password: a new one first
    MFA_REQUIRED = "mfa_required"         # a right password; now the code of the user's authenticator app
    MFA_SETUP = "mfa_setup"               # a right password; the user must set an authenticator app up
    CODE_MISMATCH = "code_mismatch"       # a wrong one-time code
    INVALID_SESSION = "invalid_session"   # a challenge's Session that is not one, expired or used
    PASSWORD_REFUSED = "password_refused"  # the realm's policy refused a new password (detail: its key)
    DISABLED = "disabled"                 # told only after the right password
    NOT_CONFIRMED = "not_confirmed"       # a sign-up whose email code has not come back
    CLIENT_NOT_ALLOWED = "client_not_allowed"
    BUSY = "busy"                         # the user's other sign-ins or Keycloak took too long: try again
    UNAVAILABLE = "unavailable"           # Keycloak or the store could not answer
    NOT_A_LEGACY_USER = "not_a_legacy_user"


@dataclass(frozen=True)
class SignInOutcome:
    result: Result
    tokens: dict | None = field(default=None, repr=False)   # SIGNED_IN: Keycloak's token response
    path: str | None = None   # SIGNED_IN: "first_login" (the password moved just now), "native", "srp", ...
    user_id: str | None = None    # a challenge (NEW_PASSWORD_REQUIRED, MFA_*): whose sign-in it continues
    username: str | None = None
    detail: str | None = None     # PASSWORD_REFUSED: Keycloak's message key

    @property
    def signed_in(self) -> bool:
        return self.result is Result.SIGNED_IN

    @property
    def password_right(self) -> bool:
        """Keycloak found the password right: tokens, or a challenge that comes after the password."""
        return self.result in (Result.SIGNED_IN, Result.NEW_PASSWORD_REQUIRED, Result.MFA_REQUIRED, Result.MFA_SETUP)
