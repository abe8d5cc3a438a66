"""The account lifecycle, the Cognito way: forgotten passwords, sign-up, attributes, deletion. No Flask here.

Works for Kii users who never signed in here (found through the legacy store
by loginName, email or phone): confirming a reset sets the new password in
Keycloak and deletes the legacy hash for good.

Existence (docs/hardening.md, "User existence"): an operation that would send a
code answers a name nobody can receive one at (unknown, disabled or deleted,
no verified address, already confirmed) as it answers a real user, after the
same steps: a code is issued and counted under a keyed stand-in for the name,
and never sent. Mail goes out after the answer (accounts.mail.MailQueue).
"""

from __future__ import annotations

import logging

from identity.accounts import codes as code_errors
from identity.accounts.codes import Codes, Issued
from identity.accounts.mail import MailQueue
from identity.cognito import errors
from identity.cognito.identifiers import normalise_identifiers
from identity.keycloak.gateway import KeycloakGateway
from identity.keycloak.passwords import PasswordRefused, set_password
from identity.legacy.models import MigrationState, utcnow
from identity.metrics import CODE_DELIVERY_FAILURES, CODES_SENT

log = logging.getLogger(__name__)


CODE_ERRORS = {
    code_errors.CodeMismatch: errors.CodeMismatchError,
    code_errors.CodeExpired: errors.ExpiredCodeError,
    code_errors.TooManyAttempts: errors.LimitExceededError,
    code_errors.RateLimited: errors.LimitExceededError,
    code_errors.Locked: errors.LimitExceededError,
}
POLICY_MESSAGES = {
    "invalidPasswordMinLengthMessage": "Password did not conform with policy: Password not long enough",
    "invalidPasswordMaxLengthMessage": "Password did not conform with policy: Password is too long",
    "invalidPasswordNotUsernameMessage": "Password did not conform with policy: Password must not be the username",
}
# Stand-in destinations for names nobody receives codes at: initials as real addresses have them.
STAND_IN_LOCAL = "abcdefghijklmnopqrstuvwxyz0123456789"
STAND_IN_DOMAINS = ("qq.com", "163.com", "126.com", "gmail.com", "sina.com", "hotmail.com", "outlook.com",
                    "foxmail.com", "yeah.net", "sohu.com", "aliyun.com", "139.com", "icloud.com", "yahoo.com")


def policy_refusal(exc: PasswordRefused) -> errors.InvalidPasswordError:
    """Keycloak's refusal of a password as Cognito words it."""
    return errors.InvalidPasswordError(POLICY_MESSAGES.get(exc.error, errors.InvalidPasswordError.message))


def mask_email(email: str) -> str:
    """As Cognito shows a destination: d***@e***"""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain[:1]}***"


def usable(user: dict | None, row) -> bool:
    """An account that may get codes: enabled in Keycloak, not disabled (deleted) in the legacy store."""
    return user is not None and user.get("enabled") is not False and not (row is not None and row["disabled"])


def can_reset(user: dict | None, row) -> bool:
    # As Cognito: only to a verified address (an unverified one could be someone else's).
    return usable(user, row) and bool(user.get("email")) and bool(user.get("emailVerified"))


def can_confirm(user: dict | None, row) -> bool:
    return usable(user, row) and bool(user.get("email")) and "VERIFY_EMAIL" in (user.get("requiredActions") or [])


class LifecycleOperations:
    """Mixed into CognitoService: needs self.migration, self.admin_factory, self.realm, self.codes, self.mailer,
    self.throttle."""

    codes: Codes
    mailer: MailQueue
    reset_minutes: int = 60
    prevent_user_existence_errors: bool = True

    def _account(self, username: str):
        """(Keycloak user, legacy row or None) for a loginName, email or phone; None when nobody matches."""
        row = self.migration.find(**normalise_identifiers(username))
        if row is not None and row["keycloak_user_id"]:
            user = self._admin_call(lambda a: a.get_user(row["keycloak_user_id"]))
            return user, row
        text = username.strip()
        query = {"email": text.lower(), "exact": True} if "@" in text else {"username": text.lower(), "exact": True}
        found = self._admin_call(lambda a: a.get_users(query))
        return (found[0], None) if len(found) == 1 else (None, None)

    # --- who gets codes, and the answer for everyone else ------------------------------------------------

    @staticmethod
    def _name_key(username: str) -> str:
        """A typed name as the account look-up reads it: a phone however written, an email, a loginName."""
        found = normalise_identifiers(username)
        return found.get("phone") or found.get("email") or found["username"]

    def _stand_in_subject(self, username: str) -> str:
        """Whose codes a name that gets none has: limits and checks count per normalised name."""
        return "name:" + self.codes.digest("name", self._name_key(username))[:48]

    def _stand_in_destination(self, username: str) -> str:
        key = self._name_key(username)
        local, at, domain = key.partition("@")
        if at and local and domain:  # a real account found by this address would show its initials
            return key
        digest = bytes.fromhex(self.codes.digest("destination", key))
        return f"{STAND_IN_LOCAL[digest[0] % len(STAND_IN_LOCAL)]}@{STAND_IN_DOMAINS[digest[1] % len(STAND_IN_DOMAINS)]}"

    def _refuse_unless_hidden(self, user, row, reason: errors.CognitoError) -> None:
        """With existence errors allowed (IDENTITY_PREVENT_USER_EXISTENCE_ERRORS false), say why nothing
        is sent; by default, return: the caller answers as for a real user."""
        if self.prevent_user_existence_errors:
            return
        if user is None:
            raise errors.UserNotFoundError()
        if not usable(user, row):
            raise errors.UserDisabledError()
        raise reason

    def _stand_in_delivery(self, purpose: str, username: str, user: dict | None) -> dict:
        """The answer of a real delivery, after the same work (a code issued and counted), nothing sent."""
        self._issue(purpose, self._stand_in_subject(username), None)
        return self._delivery((user or {}).get("email") or self._stand_in_destination(username))

    @staticmethod
    def _delivery(email: str) -> dict:
        return {"CodeDeliveryDetails": {"Destination": mask_email(email), "DeliveryMedium": "EMAIL",
                                        "AttributeName": "email"}}

    # --- codes ---------------------------------------------------------------------------------------------

    def _issue(self, purpose: str, subject: str, destination: str | None) -> Issued:
        try:
            return self.codes.issue(purpose, subject, destination)
        except code_errors.CodeError as exc:
            raise CODE_ERRORS[type(exc)]() from None

    def _mail(self, issued: Issued, user: dict, purpose: str, template: str, email: str, minutes: int) -> dict:
        """Queue the code's mail; an undelivered code is withdrawn (no older one becomes current)."""
        locale = ((user.get("attributes") or {}).get("locale") or [None])[0]

        def done(error: str | None) -> None:
            if error is None:
                CODES_SENT.labels(purpose).inc()
                log.info("code sent", extra={"purpose": purpose, "keycloak_user_id": user["id"]})
                return
            self.codes.void(issued.id)
            CODE_DELIVERY_FAILURES.labels(purpose).inc()
            log.error("code not delivered", extra={"error": error, "purpose": purpose,
                                                   "keycloak_user_id": user["id"]})

        self.mailer.submit(email, template, locale, {"code": issued.code, "minutes": minutes}, done)
        return self._delivery(email)

    def _send_code(self, user: dict, purpose: str, template: str, email: str, minutes: int) -> dict:
        return self._mail(self._issue(purpose, user["id"], email), user, purpose, template, email, minutes)

    def _check_code(self, purpose: str, subject: str, code: str, destination: str | None, client_ip) -> int:
        """The code's id if right; wrong ones count against the client's address, as failed sign-ins do."""
        try:
            return self.codes.consume(purpose, subject, code, destination)
        except code_errors.CodeError as exc:
            if isinstance(exc, code_errors.CodeMismatch):
                self.throttle.failure(client_ip)
            raise CODE_ERRORS[type(exc)]() from None

    def _guard_address(self, client_ip) -> None:
        if self.throttle.blocked(client_ip):
            raise errors.LimitExceededError()

    # --- ForgotPassword, ConfirmForgotPassword -------------------------------------------------------------

    def forgot_password(self, request: dict, client_ip=None) -> dict:
        self.check_secret_hash(request)
        user, row = self._account(request["Username"])
        if can_reset(user, row):
            return self._send_code(user, "reset", "reset", user["email"], self.reset_minutes)
        self._refuse_unless_hidden(user, row, errors.InvalidParameterError(
            "Cannot reset password for the user as there is no registered/verified email or phone_number"))
        return self._stand_in_delivery("reset", request["Username"], user)

    def confirm_forgot_password(self, request: dict, client_ip=None) -> dict:
        self.check_secret_hash(request)
        self._guard_address(client_ip)
        user, row = self._account(request["Username"])
        allowed = can_reset(user, row)
        if not allowed:
            self._refuse_unless_hidden(user, row, errors.CodeMismatchError())
        subject, destination = (user["id"], user["email"]) if allowed else \
            (self._stand_in_subject(request["Username"]), None)
        code_id = self._check_code("reset", subject, request["ConfirmationCode"], destination, client_ip)
        if not allowed:  # a stand-in code is never sent: even a lucky guess sets nothing
            raise errors.CodeMismatchError()
        try:
            set_password(self.admin_factory(), self.realm, user["id"], request["Password"])
        except PasswordRefused as exc:
            self.codes.release(code_id)  # the code stays good for a better password
            raise policy_refusal(exc) from None
        if row is not None and row["state"] != MigrationState.migrated.value:
            self.migration.mark_migrated(row["kii_user_id"], via="api", client=client_ip)
        # A user locked out by failed attempts starts afresh with the new password.
        self._admin_call(lambda a: KeycloakGateway(a, self.realm).clear_brute_force(user["id"]))
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

    def sign_up(self, request: dict, client_ip=None) -> dict:
        self.check_secret_hash(request)
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

    def confirm_sign_up(self, request: dict, client_ip=None) -> dict:
        self.check_secret_hash(request)
        self._guard_address(client_ip)
        user, row = self._account(request["Username"])
        allowed = can_confirm(user, row)
        if not allowed:
            self._refuse_unless_hidden(user, row, errors.NotAuthorizedError(
                "User cannot be confirmed. Current status is CONFIRMED"))
        subject, destination = (user["id"], user["email"]) if allowed else \
            (self._stand_in_subject(request["Username"]), None)
        self._check_code("signup", subject, request["ConfirmationCode"], destination, client_ip)
        if not allowed:
            raise errors.CodeMismatchError()
        actions = [a for a in user.get("requiredActions") or [] if a != "VERIFY_EMAIL"]
        # The whole representation: a partial one would reset the user profile's attributes.
        self._admin_call(lambda a: a.update_user(user["id"], {**user, "emailVerified": True,
                                                               "requiredActions": actions}))
        return {}

    def resend_confirmation_code(self, request: dict, client_ip=None) -> dict:
        self.check_secret_hash(request)
        user, row = self._account(request["Username"])
        if can_confirm(user, row):
            return self._send_code(user, "signup", "signup", user["email"], self.signup_hours * 60)
        self._refuse_unless_hidden(user, row, errors.InvalidParameterError("User is already confirmed."))
        return self._stand_in_delivery("signup", request["Username"], user)

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
        current = user.get("attributes") or {}
        merged = {**current, **attributes}
        if "phone_number" in attributes and attributes["phone_number"] != current.get("phone_number"):
            merged["phone_number_verified"] = ["false"]  # a new number is unverified, as in Cognito
        update = {"attributes": merged}
        issued = None
        if email and email != user.get("email"):
            if self._admin_call(lambda a: a.get_users({"email": email, "exact": True})) or \
                    self.migration.find(email=email):
                raise errors.AliasExistsError()
            update.update(email=email, emailVerified=False)  # unverified until its code comes back
            # Issued before anything is written: a refusal (the hourly limit) leaves the account as it was.
            issued = self._issue("attribute", user["id"], email)
        try:
            self._admin_call(lambda a: a.update_user(user["id"], {**user, **update}))
        except errors.CognitoError:
            if issued is not None:
                self.codes.void(issued.id)
            raise
        deliveries = []
        if issued is not None:
            deliveries.append(self._mail(issued, user, "attribute", "signup", email,
                                         self.signup_hours * 60)["CodeDeliveryDetails"])
        return {"CodeDeliveryDetailsList": deliveries}

    def verify_user_attribute(self, request: dict, client_ip=None) -> dict:
        claims = self.verify_access_token(request["AccessToken"])
        if request["AttributeName"] != "email":
            raise errors.InvalidParameterError("Only the email attribute is verified by code here.")
        self._guard_address(client_ip)
        user = self._admin_call(lambda a: a.get_user(claims["sub"]))
        # Good only for the address the code was sent to, and that address is the one marked verified.
        self._check_code("attribute", claims["sub"], request["Code"], user.get("email"), client_ip)
        self._admin_call(lambda a: a.update_user(claims["sub"], {**user, "emailVerified": True}))
        return {}

    def delete_user(self, request: dict, client_ip=None) -> dict:
        claims = self.verify_access_token(request["AccessToken"])
        self._admin_call(lambda a: a.delete_user(claims["sub"]))
        self.migration.forget_user(claims["sub"], client=client_ip)
        log.info("user deleted", extra={"keycloak_user_id": claims["sub"]})
        return {}
