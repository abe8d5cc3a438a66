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
from identity.metrics import CODES_SENT

log = logging.getLogger(__name__)


CODE_ERRORS = {
    code_errors.CodeMismatch: errors.CodeMismatchError,
    code_errors.CodeExpired: errors.ExpiredCodeError,
    code_errors.TooManyAttempts: errors.LimitExceededError,
    code_errors.RateLimited: errors.LimitExceededError,
}
POLICY_MESSAGES = {
    "invalidPasswordMinLengthMessage": "Password did not conform with policy: Password not long enough",
    "invalidPasswordMaxLengthMessage": "Password did not conform with policy: Password is too long",
    "invalidPasswordNotUsernameMessage": "Password did not conform with policy: Password must not be the username",
}


def policy_refusal(exc: PasswordRefused) -> errors.InvalidPasswordError:
    """Keycloak's refusal of a password as Cognito words it."""
    return errors.InvalidPasswordError(POLICY_MESSAGES.get(exc.error, errors.InvalidPasswordError.message))


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
        if row is not None and row["keycloak_user_id"]:
            user = self._admin_call(lambda a: a.get_user(row["keycloak_user_id"]))
            return user, row
        text = username.strip()
        query = {"email": text.lower(), "exact": True} if "@" in text else {"username": text.lower(), "exact": True}
        found = self._admin_call(lambda a: a.get_users(query))
        return (found[0], None) if len(found) == 1 else (None, None)

    def forgot_password(self, request: dict, client_ip=None) -> dict:
        self.client(request["ClientId"])
        user, row = self._account(request["Username"])
        if user is None:
            # Do not reveal that nobody has this name: answer as for a real account, send nothing.
            return self._unknown_user_delivery(request["Username"])
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
            raise errors.CodeDeliveryFailureError() from None
        CODES_SENT.labels("reset").inc()
        log.info("reset code sent", extra={"keycloak_user_id": user["id"]})
        return self._delivery(user["email"])

    def _unknown_user_delivery(self, username: str) -> dict:
        """An ordinary-looking answer for a name nobody has (no mail is sent): existence stays hidden."""
        fake = hashlib.sha256(username.encode()).hexdigest()
        return self._delivery(f"{fake[0]}@{fake[1]}.example")

    @staticmethod
    def _delivery(email: str) -> dict:
        return {"CodeDeliveryDetails": {"Destination": mask_email(email), "DeliveryMedium": "EMAIL",
                                        "AttributeName": "email"}}

    def confirm_forgot_password(self, request: dict, client_ip=None) -> dict:
        self.client(request["ClientId"])
        user, row = self._account(request["Username"])
        if user is None:
            raise errors.CodeMismatchError()
        try:
            self.codes.consume("reset", user["id"], request["ConfirmationCode"])
        except code_errors.CodeError as exc:
            raise CODE_ERRORS[type(exc)]() from None
        try:
            set_password(self.admin_factory(), self.realm, user["id"], request["Password"])
        except PasswordRefused as exc:
            self.codes.release("reset", user["id"])  # the code stays good for a better password
            raise policy_refusal(exc) from None
        if row is not None and row["state"] != MigrationState.migrated.value:
            self.migration.mark_migrated(row["kii_user_id"], via="api", client=client_ip)
        # A user locked out by failed attempts starts afresh with the new password.
        self._admin_call(lambda a: a.connection.raw_delete(
            f"admin/realms/{self.realm}/attack-detection/brute-force/users/{user['id']}"))
        log.info("password reset", extra={"keycloak_user_id": user["id"], "at": utcnow().isoformat()})
        return {}


ATTRIBUTE_NAMES = {"phone_number", "name", "locale"}


def keycloak_attributes(attributes: list[dict]) -> tuple[dict, str | None]:
    """Cognito's [{Name, Value}] as Keycloak attributes, and the email (kept apart: a user field there)."""
    result, email = {}, None
    for item in attributes:
        name, value = item["Name"], item["Value"]
        if name == "email":
            email = value.strip().lower()
        elif name in ATTRIBUTE_NAMES:
            result[name] = [value]
        elif name.startswith("custom:") and name != "custom:kii_user_id" and len(name) <= 72:
            result["custom." + name[len("custom:"):]] = [value]
        elif name in ("email_verified", "phone_number_verified", "sub", "custom:kii_user_id"):
            raise errors.InvalidParameterError(f"Cannot modify the non-mutable attribute {name}")
        else:
            raise errors.InvalidParameterError(f"Attribute does not exist in the schema: {name}"[:200])
    return result, email


class AccountOperations(LifecycleOperations):
    """SignUp, ConfirmSignUp, ResendConfirmationCode, ChangePassword, UpdateUserAttributes,
    VerifyUserAttribute, DeleteUser."""

    signup_hours: int = 24

    def _send_code(self, user: dict, purpose: str, template: str, email: str, lifetime_minutes: int) -> dict:
        try:
            code = self.codes.issue(purpose, user["id"])
        except code_errors.CodeError as exc:
            raise CODE_ERRORS[type(exc)]() from None
        locale = ((user.get("attributes") or {}).get("locale") or [None])[0]
        try:
            self.mailer.send(email, template, locale, code=code, minutes=lifetime_minutes)
        except DeliveryFailed as exc:
            self.codes.forget(purpose, user["id"])
            log.error("code not delivered", extra={"error": str(exc), "purpose": purpose})
            raise errors.CodeDeliveryFailureError() from None
        CODES_SENT.labels(purpose).inc()
        return self._delivery(email)

    def sign_up(self, request: dict, client_ip=None) -> dict:
        from identity.cognito.service import normalise_identifiers

        self.client(request["ClientId"])
        username = request["Username"].strip()
        attributes, email = keycloak_attributes(request.get("UserAttributes") or [])
        if "@" in username and not email:
            email = username.lower()
        if not email:
            raise errors.InvalidParameterError("Attributes did not conform to the schema: email is required")
        # Taken among migrated and not-yet-migrated users alike (the legacy store knows Kii's identifiers).
        taken = self.migration.find(**normalise_identifiers(username)) or self.migration.find(email=email)
        admin = self.admin_factory()
        if taken or self._admin_call(lambda a: a.get_users({"username": username.lower(), "exact": True})) or \
                self._admin_call(lambda a: a.get_users({"email": email, "exact": True})):
            raise errors.UsernameExistsError()
        try:
            user_id = admin.create_user({"username": username.lower(), "email": email, "emailVerified": False,
                                         "enabled": True, "requiredActions": ["VERIFY_EMAIL"],
                                         "attributes": attributes})
        except Exception as exc:  # python-keycloak: 409 for a race with another sign-up, others are faults
            if getattr(exc, "response_code", None) == 409:
                raise errors.UsernameExistsError() from None
            raise errors.InternalError() from None
        try:
            set_password(admin, self.realm, user_id, request["Password"])
        except PasswordRefused as exc:
            admin.delete_user(user_id)
            raise policy_refusal(exc) from None
        user = self._admin_call(lambda a: a.get_user(user_id))
        delivery = self._send_code(user, "signup", "signup", email, self.signup_hours * 60)
        return {"UserConfirmed": False, "UserSub": user_id, **delivery}

    def _unconfirmed(self, username: str) -> dict:
        user, _ = self._account(username)
        if user is None:
            raise errors.CodeMismatchError()
        return user

    def confirm_sign_up(self, request: dict, client_ip=None) -> dict:
        self.client(request["ClientId"])
        user = self._unconfirmed(request["Username"])
        if "VERIFY_EMAIL" not in (user.get("requiredActions") or []):
            raise errors.NotAuthorizedError("User cannot be confirmed. Current status is CONFIRMED")
        try:
            self.codes.consume("signup", user["id"], request["ConfirmationCode"])
        except code_errors.CodeError as exc:
            raise CODE_ERRORS[type(exc)]() from None
        actions = [a for a in user.get("requiredActions") or [] if a != "VERIFY_EMAIL"]
        # The whole representation: a partial one would reset the user profile's attributes.
        self._admin_call(lambda a: a.update_user(user["id"], {**user, "emailVerified": True,
                                                               "requiredActions": actions}))
        return {}

    def resend_confirmation_code(self, request: dict, client_ip=None) -> dict:
        self.client(request["ClientId"])
        user, _ = self._account(request["Username"])
        if user is None:
            return self._unknown_user_delivery(request["Username"])
        if "VERIFY_EMAIL" not in (user.get("requiredActions") or []):
            raise errors.InvalidParameterError("User is already confirmed.")
        return self._send_code(user, "signup", "signup", user["email"], self.signup_hours * 60)

    def change_password(self, request: dict, client_ip=None) -> dict:
        claims = self.verify_access_token(request["AccessToken"])
        user = self._admin_call(lambda a: a.get_user(claims["sub"]))
        client_id = claims["client_id"]
        secret = self.clients.get(client_id)
        # The previous password, checked by Keycloak itself as a sign-in is: under the user's lock,
        # through Keycloak's brute-force protection, wrong attempts counted.
        with self.user_lock(user["username"]):
            tokens = self._keycloak_grant(client_id, secret, user["username"], request["PreviousPassword"],
                                          client_ip, user_id=user["id"])
        try:  # the check's own session is not the user's: ended at once, best effort
            self.oidc.revoke(client_id, secret, tokens["refresh_token"])
        except Exception as exc:
            log.warning("could not end the password check's session", extra={"error": type(exc).__name__})
        try:
            set_password(self.admin_factory(), self.realm, user["id"], request["ProposedPassword"])
        except PasswordRefused as exc:
            raise policy_refusal(exc) from None
        return {}

    def update_user_attributes(self, request: dict, client_ip=None) -> dict:
        claims = self.verify_access_token(request["AccessToken"])
        attributes, email = keycloak_attributes(request["UserAttributes"])
        user = self._admin_call(lambda a: a.get_user(claims["sub"]))
        merged = {**(user.get("attributes") or {}), **attributes}
        update = {"attributes": merged}
        deliveries = []
        if email and email != user.get("email"):
            if self._admin_call(lambda a: a.get_users({"email": email, "exact": True})) or \
                    self.migration.find(email=email):
                raise errors.AliasExistsError()
            update.update(email=email, emailVerified=False)  # unverified until its code comes back
        self._admin_call(lambda a: a.update_user(user["id"], {**user, **update}))
        if "email" in update:
            refreshed = self._admin_call(lambda a: a.get_user(user["id"]))
            deliveries.append(self._send_code(refreshed, "attribute", "signup", email,
                                              self.signup_hours * 60)["CodeDeliveryDetails"])
        return {"CodeDeliveryDetailsList": deliveries}

    def verify_user_attribute(self, request: dict, client_ip=None) -> dict:
        claims = self.verify_access_token(request["AccessToken"])
        if request["AttributeName"] != "email":
            raise errors.InvalidParameterError("Only the email attribute is verified by code here.")
        try:
            self.codes.consume("attribute", claims["sub"], request["Code"])
        except code_errors.CodeError as exc:
            raise CODE_ERRORS[type(exc)]() from None
        user = self._admin_call(lambda a: a.get_user(claims["sub"]))
        self._admin_call(lambda a: a.update_user(claims["sub"], {**user, "emailVerified": True}))
        return {}

    def delete_user(self, request: dict, client_ip=None) -> dict:
        claims = self.verify_access_token(request["AccessToken"])
        self._admin_call(lambda a: a.delete_user(claims["sub"]))
        self.migration.forget_user(claims["sub"], client=client_ip)
        log.info("user deleted", extra={"keycloak_user_id": claims["sub"]})
        return {}
