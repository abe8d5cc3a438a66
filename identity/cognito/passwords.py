"""ForgotPassword, ConfirmForgotPassword, ChangePassword. No Flask here.

Works for Kii users who never signed in here (found through the legacy store by loginName, email
or phone): a new password set in Keycloak deletes the legacy hash for good.
"""

from __future__ import annotations

import logging

from identity.cognito import errors
from identity.cognito.clients import AppClients
from identity.cognito.delivery import CodeDelivery, can_reset
from identity.cognito.sessions import refusal
from identity.cognito.tokens import AccessTokens
from identity.keycloak.errors import PasswordRefused
from identity.keycloak.gateway import KeycloakGateway
from identity.keycloak.oidc import OIDC
from identity.legacy.migration import LegacyMigration
from identity.legacy.models import MigrationState, utcnow
from identity.signin.service import SignIn

log = logging.getLogger(__name__)

def set_new_password(keycloak: KeycloakGateway, migration: LegacyMigration, sign_in: SignIn, user: dict, row,
                     password: str, client_ip: str | None, via: str, temporary: bool = False) -> None:
    """A new password for the user (a reset by code, an administrator's): Keycloak holds it, a Kii
    user's legacy hash goes for good (never both), the SRP verifier follows it, and a lockout earned
    with the old one ends. PasswordRefused when the realm's policy refuses it; nothing changed then."""
    keycloak.set_password(user["id"], password, temporary)
    if row is not None and row["state"] != MigrationState.migrated.value:
        migration.mark_migrated(row["kii_user_id"], via=via, client=client_ip)
    sign_in.seen(user["id"], user["username"], password)
    keycloak.clear_brute_force(user["id"])


class PasswordOperations:
    def __init__(self, delivery: CodeDelivery, keycloak: KeycloakGateway, migration: LegacyMigration,
                 sign_in: SignIn, tokens: AccessTokens, oidc: OIDC, clients: AppClients, reset_minutes: int = 60):
        self.delivery, self.keycloak, self.migration = delivery, keycloak, migration
        self.sign_in, self.tokens, self.oidc, self.clients = sign_in, tokens, oidc, clients
        self.reset_minutes = reset_minutes

    def forgot_password(self, request: dict, client_ip=None) -> dict:
        self.clients.check_request(request)
        user, row = self.delivery.account(request["Username"])
        if can_reset(user, row):
            return self.delivery.send(user, "reset", "reset", user["email"], self.reset_minutes)
        self.delivery.refuse_unless_hidden(user, row, errors.InvalidParameterError(
            "Cannot reset password for the user as there is no registered/verified email or phone_number"))
        return self.delivery.stand_in("reset", request["Username"], user)

    def confirm_forgot_password(self, request: dict, client_ip=None) -> dict:
        self.clients.check_request(request)
        self.delivery.guard_address(client_ip)
        user, row = self.delivery.account(request["Username"])
        allowed = can_reset(user, row)
        if not allowed:
            self.delivery.refuse_unless_hidden(user, row, errors.CodeMismatchError())
        subject, destination = (user["id"], user["email"]) if allowed else \
            (self.delivery.stand_in_subject(request["Username"]), None)
        code_id = self.delivery.check("reset", subject, request["ConfirmationCode"], destination, client_ip)
        if not allowed:  # a stand-in code is never sent: even a lucky guess sets nothing
            raise errors.CodeMismatchError()
        try:
            set_new_password(self.keycloak, self.migration, self.sign_in, user, row, request["Password"], client_ip,
                             via="api")
        except PasswordRefused as exc:
            self.delivery.codes.release(code_id)  # the code stays good for a better password
            raise errors.policy_refusal(exc.error) from None
        log.info("password reset", extra={"keycloak_user_id": user["id"], "at": utcnow().isoformat()})
        return {}

    def change_password(self, request: dict, client_ip=None) -> dict:
        claims = self.tokens.verify(request["AccessToken"])
        user = self.keycloak.get_user(claims["sub"])
        client_id = claims["client_id"]
        secret = self.clients.get(client_id)
        # The previous password, checked by Keycloak itself as a sign-in is: under the user's lock,
        # through Keycloak's brute-force protection, wrong attempts counted.
        outcome = self.sign_in.verify_current_password(client_id, secret, user["username"], user["id"],
                                                       request["PreviousPassword"], client_ip)
        if not outcome.password_right:
            raise refusal(outcome, client_id)
        try:  # the check's own session is not the user's: ended at once, best effort
            if outcome.signed_in:  # (a user with an authenticator app got a challenge: no session)
                self.oidc.revoke(client_id, secret, outcome.tokens["refresh_token"])
        except Exception as exc:
            log.warning("could not end the password check's session", extra={"error": type(exc).__name__})
        try:
            self.keycloak.set_password(user["id"], request["ProposedPassword"])
        except PasswordRefused as exc:
            raise errors.policy_refusal(exc.error) from None
        self.sign_in.seen(user["id"], user["username"], request["ProposedPassword"])
        return {}
