"""SignUp, ConfirmSignUp, ResendConfirmationCode, UpdateUserAttributes, VerifyUserAttribute, DeleteUser.

No Flask here. Users Kii knew are found through the legacy store as well as in Keycloak: a name or
an email a Kii user holds is taken, migrated or not.
"""

from __future__ import annotations

import logging
from typing import Callable

from identity.cognito import errors
from identity.cognito.clients import AppClients
from identity.cognito.delivery import CodeDelivery, can_confirm
from identity.cognito.tokens import AccessTokens
from identity.keycloak.errors import PasswordRefused, UserExists
from identity.keycloak.gateway import KeycloakGateway
from identity.legacy.identifiers import normalise_identifiers
from identity.legacy.migration import LegacyMigration

log = logging.getLogger(__name__)

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


def admin_attributes(attributes: list[dict]) -> tuple[dict, str | None, bool | None]:
    """As keycloak_attributes, for an administrator, who may also say the email and phone are verified:
    (attributes, email, email verified or None when not said)."""
    said = {item["Name"]: item["Value"].strip().lower() == "true" for item in attributes
            if item["Name"] in ("email_verified", "phone_number_verified")}
    result, email = keycloak_attributes([item for item in attributes if item["Name"] not in said])
    if "phone_number_verified" in said:
        result["phone_number_verified"] = ["true" if said["phone_number_verified"] else "false"]
    return result, email, said.get("email_verified")


def merged_attributes(user: dict, attributes: dict) -> dict:
    """The user's Keycloak attributes with these set; a new phone number is unverified unless said."""
    current = user.get("attributes") or {}
    merged = {**current, **attributes}
    if "phone_number" in attributes and attributes["phone_number"] != current.get("phone_number") \
            and "phone_number_verified" not in attributes:
        merged["phone_number_verified"] = ["false"]  # a new number is unverified, as in Cognito
    return merged


def without_attributes(user: dict, stored: list[str]) -> dict:
    """The user's Keycloak attributes without these (stored names: deletable())."""
    attributes = {name: values for name, values in (user.get("attributes") or {}).items() if name not in stored}
    if "phone_number" in stored:
        attributes.pop("phone_number_verified", None)  # no number, nothing verified
    return attributes


def deletable(name: str) -> str:
    """The Keycloak attribute a Cognito attribute a user may delete is stored as."""
    if name in ATTRIBUTE_NAMES:
        return name
    if name.startswith("custom:") and name != "custom:kii_user_id" and len(name) <= 72:
        return "custom." + name[len("custom:"):]
    if name in ("email", "email_verified", "phone_number_verified", "sub", "custom:kii_user_id"):
        # email is how the user signs in and gets codes: required, as in the other regions' pools.
        raise errors.InvalidParameterError(f"Cannot delete the required or non-mutable attribute {name}")
    raise errors.InvalidParameterError(f"Attribute does not exist in the schema: {name}"[:200])


class AccountOperations:
    def __init__(self, delivery: CodeDelivery, keycloak: KeycloakGateway, migration: LegacyMigration,
                 tokens: AccessTokens, clients: AppClients, signup_hours: int = 24,
                 password_seen: Callable[[str, str, str], None] = lambda *_: None):
        self.delivery, self.keycloak, self.migration = delivery, keycloak, migration
        self.store = migration.store
        self.tokens, self.clients, self.signup_minutes = tokens, clients, signup_hours * 60
        self.password_seen = password_seen   # the sign-in's best-effort keeper of what a password offers

    def _taken(self, username: str, email: str) -> bool:
        """Among migrated and not-yet-migrated users alike (the legacy store knows Kii's identifiers)."""
        return bool(self.store.find(**normalise_identifiers(username)) or self.store.find(email=email)
                    or self.keycloak.find_users(username=username) or self.keycloak.find_users(email=email))

    def sign_up(self, request: dict, client_ip=None) -> dict:
        self.clients.check_request(request)
        username = request["Username"].strip()
        attributes, email = keycloak_attributes(request.get("UserAttributes") or [])
        if "@" in username and not email:
            email = username.lower()
        if not email:
            raise errors.InvalidParameterError("Attributes did not conform to the schema: email is required")
        if self._taken(username, email):
            raise errors.UsernameExistsError()
        try:
            user_id = self.keycloak.create_user({"username": username.lower(), "email": email, "emailVerified": False,
                                                 "enabled": True, "requiredActions": ["VERIFY_EMAIL"],
                                                 "attributes": attributes})
        except UserExists:
            raise errors.UsernameExistsError() from None
        try:
            self.keycloak.set_password(user_id, request["Password"])
        except PasswordRefused as exc:
            self.keycloak.delete_user(user_id)
            raise errors.policy_refusal(exc.error) from None
        user = self.keycloak.get_user(user_id)
        self.password_seen(user_id, user["username"], request["Password"])
        sent = self.delivery.send(user, "signup", "signup", email, self.signup_minutes)
        return {"UserConfirmed": False, "UserSub": user_id, **sent}

    def confirm_sign_up(self, request: dict, client_ip=None) -> dict:
        self.clients.check_request(request)
        self.delivery.guard_address(client_ip)
        user, row = self.delivery.account(request["Username"])
        allowed = can_confirm(user, row)
        if not allowed:
            self.delivery.refuse_unless_hidden(user, row, errors.NotAuthorizedError(
                "User cannot be confirmed. Current status is CONFIRMED"))
        subject, destination = (user["id"], user["email"]) if allowed else \
            (self.delivery.stand_in_subject(request["Username"]), None)
        self.delivery.check("signup", subject, request["ConfirmationCode"], destination, client_ip)
        if not allowed:
            raise errors.CodeMismatchError()
        actions = [a for a in user.get("requiredActions") or [] if a != "VERIFY_EMAIL"]
        self.keycloak.update_user(user["id"], {**user, "emailVerified": True, "requiredActions": actions})
        return {}

    def resend_confirmation_code(self, request: dict, client_ip=None) -> dict:
        self.clients.check_request(request)
        user, row = self.delivery.account(request["Username"])
        if can_confirm(user, row):
            return self.delivery.send(user, "signup", "signup", user["email"], self.signup_minutes)
        self.delivery.refuse_unless_hidden(user, row, errors.InvalidParameterError("User is already confirmed."))
        return self.delivery.stand_in("signup", request["Username"], user)

    def update_user_attributes(self, request: dict, client_ip=None) -> dict:
        claims = self.tokens.verify(request["AccessToken"])
        attributes, email = keycloak_attributes(request["UserAttributes"])
        user = self.keycloak.get_user(claims["sub"])
        update = {"attributes": merged_attributes(user, attributes)}
        issued = None
        if email and email != user.get("email"):
            if self.keycloak.find_users(email=email) or self.store.find(email=email):
                raise errors.AliasExistsError()
            update.update(email=email, emailVerified=False)  # unverified until its code comes back
            # Issued before anything is written: a refusal (the hourly limit) leaves the account as it was.
            issued = self.delivery.issue("attribute", user["id"], email)
        try:
            self.keycloak.update_user(user["id"], {**user, **update})
        except Exception:
            if issued is not None:
                self.delivery.codes.void(issued.id)
            raise
        deliveries = []
        if issued is not None:
            deliveries.append(self.delivery.mail(issued, user, "attribute", "signup", email,
                                                 self.signup_minutes)["CodeDeliveryDetails"])
        return {"CodeDeliveryDetailsList": deliveries}

    def verify_user_attribute(self, request: dict, client_ip=None) -> dict:
        claims = self.tokens.verify(request["AccessToken"])
        if request["AttributeName"] != "email":
            raise errors.InvalidParameterError("Only the email attribute is verified by code here.")
        self.delivery.guard_address(client_ip)
        user = self.keycloak.get_user(claims["sub"])
        # Good only for the address the code was sent to, and that address is the one marked verified.
        self.delivery.check("attribute", claims["sub"], request["Code"], user.get("email"), client_ip)
        self.keycloak.update_user(claims["sub"], {**user, "emailVerified": True})
        return {}

    def get_user_attribute_verification_code(self, request: dict, client_ip=None) -> dict:
        """A new code for the user's email (as Cognito, whether or not it is verified already)."""
        claims = self.tokens.verify(request["AccessToken"])
        if request["AttributeName"] != "email":
            raise errors.InvalidParameterError("Only the email attribute is verified by code here.")
        user = self.keycloak.get_user(claims["sub"])
        if not user.get("email"):
            raise errors.InvalidParameterError("The user has no email to verify.")
        return self.delivery.send(user, "attribute", "signup", user["email"], self.signup_minutes)

    def delete_user_attributes(self, request: dict, client_ip=None) -> dict:
        claims = self.tokens.verify(request["AccessToken"])
        names = request["UserAttributeNames"]
        stored = [deletable(name) for name in names]
        user = self.keycloak.get_user(claims["sub"])
        self.keycloak.update_user(user["id"], {**user, "attributes": without_attributes(user, stored)})
        return {}

    def delete_user(self, request: dict, client_ip=None) -> dict:
        claims = self.tokens.verify(request["AccessToken"])
        self.keycloak.delete_user(claims["sub"])
        self.migration.forget_user(claims["sub"], client=client_ip)
        log.info("user deleted", extra={"keycloak_user_id": claims["sub"]})
        return {}
