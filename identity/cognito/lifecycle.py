"""Forgotten passwords, the Cognito way: ForgotPassword and ConfirmForgotPassword.

Works for Kii users who never signed in here (found through the legacy store
by loginName, email or phone): confirming sets the new password in Keycloak
and deletes the legacy hash for good. No Flask here.
"""

from __future__ import annotations

import hashlib
import logging

from identity.accounts import codes as code_errors
from identity.accounts.codes import Codes
from identity.accounts.mail import DeliveryFailed, Mailer
from identity.cognito import errors
from identity.keycloak.passwords import PasswordRefused, set_password
from identity.legacy.models import MigrationState, utcnow

log = logging.getLogger(__name__)


class CodeMismatchError(errors.CognitoError):
    type = "CodeMismatchException"
    message = "Invalid verification code provided, please try again."


class ExpiredCodeError(errors.CognitoError):
    type = "ExpiredCodeException"
    message = "Invalid code provided, please request a code again."


class CodeDeliveryFailureError(errors.CognitoError):
    type = "CodeDeliveryFailureException"
    message = "Unable to deliver the verification code. Please try again."


class InvalidPasswordError(errors.CognitoError):
    type = "InvalidPasswordException"
    message = "Password does not conform to policy."


CODE_ERRORS = {
    code_errors.CodeMismatch: CodeMismatchError,
    code_errors.CodeExpired: ExpiredCodeError,
    code_errors.TooManyAttempts: errors.LimitExceededError,
    code_errors.RateLimited: errors.LimitExceededError,
}
POLICY_MESSAGES = {
    "invalidPasswordMinLengthMessage": "Password did not conform with policy: Password not long enough",
    "invalidPasswordMaxLengthMessage": "Password did not conform with policy: Password is too long",
    "invalidPasswordNotUsernameMessage": "Password did not conform with policy: Password must not be the username",
}


def mask_email(email: str) -> str:
    """As Cognito shows a destination: d***@e***"""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain[:1]}***"


class LifecycleOperations:
    """Mixed into CognitoService: needs self.migration, self.admin_factory, self.realm, self.codes, self.mailer."""

    codes: Codes
    mailer: Mailer
    reset_minutes: int = 60

    def _account(self, username: str):
        """(Keycloak user, legacy row or None) for a loginName, email or phone; None when nobody matches."""
        from identity.cognito.service import normalise_identifiers

        row = self.migration.find(**normalise_identifiers(username))
        admin = self.admin_factory()
        if row is not None and row["keycloak_user_id"]:
            user = self._admin_call(lambda a: a.get_user(row["keycloak_user_id"]))
            return user, row
        text = username.strip()
        query = {"email": text.lower(), "exact": True} if "@" in text else {"username": text.lower(), "exact": True}
        found = self._admin_call(lambda a: a.get_users(query))
        del admin
        return (found[0], None) if len(found) == 1 else (None, None)

    def forgot_password(self, request: dict, client_ip=None) -> dict:
        self.client(request["ClientId"])
        user, row = self._account(request["Username"])
        if user is None:
            # Do not reveal that nobody has this name: answer as for a real account, send nothing.
            fake = hashlib.sha256(request["Username"].encode()).hexdigest()
            return self._delivery(f"{fake[0]}@{fake[1]}.example")
        if not user.get("email") or not user.get("emailVerified"):
            raise errors.InvalidParameterError(
                "Cannot reset password for the user as there is no registered/verified email or phone_number")
        try:
            code = self.codes.issue("reset", user["id"])
        except code_errors.CodeError as exc:
            raise CODE_ERRORS[type(exc)]() from None
        locale = ((user.get("attributes") or {}).get("locale") or [None])[0]
        try:
            self.mailer.send(user["email"], "reset", locale, code=code, minutes=self.reset_minutes)
        except DeliveryFailed as exc:
            self.codes.forget("reset", user["id"])
            log.error("reset code not delivered", extra={"error": str(exc)})
            raise CodeDeliveryFailureError() from None
        log.info("reset code sent", extra={"keycloak_user_id": user["id"]})
        return self._delivery(user["email"])

    @staticmethod
    def _delivery(email: str) -> dict:
        return {"CodeDeliveryDetails": {"Destination": mask_email(email), "DeliveryMedium": "EMAIL",
                                        "AttributeName": "email"}}

    def confirm_forgot_password(self, request: dict, client_ip=None) -> dict:
        self.client(request["ClientId"])
        user, row = self._account(request["Username"])
        if user is None:
            raise CodeMismatchError()
        try:
            self.codes.consume("reset", user["id"], request["ConfirmationCode"])
        except code_errors.CodeError as exc:
            raise CODE_ERRORS[type(exc)]() from None
        try:
            set_password(self.admin_factory(), self.realm, user["id"], request["Password"])
        except PasswordRefused as exc:
            self.codes.release("reset", user["id"])  # the code stays good for a better password
            raise InvalidPasswordError(POLICY_MESSAGES.get(exc.error, InvalidPasswordError.message)) from None
        if row is not None and row["state"] != MigrationState.migrated.value:
            self.migration.mark_migrated(row["kii_user_id"], via="reset")
        # A user locked out by failed attempts starts afresh with the new password.
        self._admin_call(lambda a: a.connection.raw_delete(
            f"admin/realms/{self.realm}/attack-detection/brute-force/users/{user['id']}"))
        log.info("password reset", extra={"keycloak_user_id": user["id"], "at": utcnow().isoformat()})
        return {}
