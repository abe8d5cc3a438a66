"""Keycloak's password grant, and what its refusals mean: the one translation of them.

Keycloak refuses a password check while its brute-force bookkeeping of the same user's previous
login still runs (asynchronously, after that login's response): the answer is "Invalid user
credentials" even for the right password. Callers hold the user's sign-in lock, so such a refusal
can only be that leftover; Keycloak's LOGIN_ERROR event tells it apart from a wrong password, and
the check is repeated once the bookkeeping is done.
"""

from __future__ import annotations

import logging
import time

from identity.keycloak.errors import GrantRefused, OAuthError
from identity.keycloak.gateway import KeycloakGateway
from identity.keycloak.oidc import OIDC
from identity.metrics import KEYCLOAK_BUSY_RETRIES, MIGRATION_TICKETS

log = logging.getLogger(__name__)


def plain_refusal(exc: OAuthError) -> bool:
    """Keycloak's one answer for a wrong password, a busy user and a locked one alike."""
    return exc.error == "invalid_grant" and "invalid user credentials" in exc.description.lower()


# The provider's direct-grant code step (keycloak_spi_bridge LegacyDirectGrantOtp) in its own words.
CODE_REQUIRED = "one-time code required"
CODE_WRONG = "invalid one-time code"


def worded_refusal(exc: OAuthError) -> str | None:
    """The reason a refusal names in its own words, or None when it says no more than "credentials"."""
    description = exc.description.lower()
    if description == CODE_REQUIRED:
        return "mfa_required"   # the password was right; the user's authenticator app has the rest
    if description == CODE_WRONG:
        return "code_mismatch"
    if "temporarily disabled" in description or "temporarily locked" in description:
        return "locked"
    if "disabled" in description:
        return "disabled"
    if "not fully set up" in description:
        return "required_action"  # the password was right; an action is pending
    if exc.error in ("invalid_client", "unauthorized_client"):
        return "client_not_allowed"
    return None


class PasswordGrants:
    def __init__(self, oidc: OIDC, gateway: KeycloakGateway, patience_s: float, scope: str = "openid"):
        self.oidc, self.gateway, self.scope = oidc, gateway, scope
        self.patience_s = patience_s   # how long a busy Keycloak is waited for before the caller is told so

    def grant(self, client_id: str, secret: str | None, username: str, password: str,
              user_id: str | None = None, ticket: str | None = None, otp: str | None = None) -> dict:
        """Tokens for the user; GrantRefused (with its reason) or KeycloakUnavailable otherwise. With a
        first-login `ticket`, Keycloak takes it in place of checking the password again; `otp` is the
        code of the user's authenticator app, for one who set one up."""
        deadline = time.monotonic() + self.patience_s
        pause = 0.05
        while True:
            sent_ms = int(time.time() * 1000)
            try:
                tokens = self.oidc.password_grant(client_id, secret, username, password, scope=self.scope,
                                                  migration_ticket=ticket, otp=otp)
            except OAuthError as exc:
                if not plain_refusal(exc):
                    raise self._worded(exc, username, user_id) from None
                reason = self.refusal_reason(username, user_id, client_id, sent_ms)
                if reason == "locked":
                    raise GrantRefused("locked") from None
                if reason != "busy":
                    if not ticket:
                        raise GrantRefused("credentials") from None
                    # Keycloak judged a first login's ticket and refused it (a "busy" refusal comes
                    # before the ticket step and leaves it unspent). Keycloak holds the password
                    # now, so the ordinary check decides, once.
                    ticket = None
                    MIGRATION_TICKETS.labels("refused").inc()
                    log.warning("migration ticket refused; checking the password instead")
                    continue
                if time.monotonic() + pause > deadline:
                    # Still busy when the time is up: the password was never judged, so it is not called
                    # wrong (nor counted); the caller is told to try again.
                    raise GrantRefused("busy") from None
                KEYCLOAK_BUSY_RETRIES.inc()
                time.sleep(pause)
                pause = min(pause * 2, 0.5)
                continue
            if ticket:
                MIGRATION_TICKETS.labels("used").inc()
            return tokens

    def _worded(self, exc: OAuthError, username: str, user_id: str | None) -> GrantRefused:
        reason = worded_refusal(exc) or "credentials"
        if reason == "mfa_required":
            return GrantRefused(reason, user_id=user_id or (self.gateway.find_user(username=username) or {}).get("id"))
        if reason != "required_action":
            return GrantRefused(reason)
        # The password was right; what is missing: a confirmed sign-up, a new password in place of a
        # temporary one (an administrator's reset), or something only Keycloak's pages can do.
        user = self.gateway.find_user(username=username)
        actions = list((user or {}).get("requiredActions") or [])
        if actions == ["VERIFY_EMAIL"]:
            return GrantRefused("not_confirmed")
        if "UPDATE_PASSWORD" in actions:
            return GrantRefused("new_password_required", user_id=user["id"])
        if actions == ["CONFIGURE_TOTP"]:
            return GrantRefused("mfa_setup", user_id=user["id"])
        return GrantRefused("reset_required")

    def refusal_reason(self, username: str, user_id: str | None, client_id: str, sent_ms: int) -> str:
        """Why Keycloak refused a grant with its plain answer: 'busy' (its brute-force bookkeeping of
        an earlier login was still running), 'locked' (a real lockout) or 'credentials' (anything
        else). KeycloakUnavailable when the Admin API cannot tell: without the explanation a right
        password could be answered as a wrong one."""
        if user_id is None:
            found = self.gateway.find_user(username=username)
            if found is None:
                return "credentials"
            user_id = found["id"]
        event = self.gateway.last_login_error(user_id, client_id)
        # Clocks of two hosts: a second of slack; a stale event only costs one more check.
        if event is None or event.get("time", 0) < sent_ms - 1000 or event.get("error") != "user_temporarily_disabled":
            return "credentials"
        return "locked" if self.gateway.brute_force_status(user_id).get("disabled") else "busy"
