"""The Cognito admin operations on one user, which backends call signed with SigV4
(identity.cognito.sigv4) by an access key (identity.access_keys). No Flask here. Each takes the
validated request, with the calling key's name under "_caller", and answers for the one pool,
IDENTITY_USER_POOL_ID. The listings and groups are identity.cognito.directory's.

UserStatus (docs/admin-api.md): FORCE_CHANGE_PASSWORD (Keycloak's UPDATE_PASSWORD pending),
UNCONFIRMED (a sign-up whose email code has not come back), RESET_REQUIRED (a Kii user without a
usable hash, or a user without a password), CONFIRMED otherwise, a Kii user not migrated yet
included: their old password signs them in. `custom:kii_user_id` and `custom:migration_state` say
which users came from Kii and where their migration stands.
"""

from __future__ import annotations

import logging
import secrets
import string

from identity import audit
from identity.cognito import errors
from identity.cognito.accounts import admin_attributes, deletable, merged_attributes, without_attributes
from identity.cognito.delivery import CodeDelivery, can_reset
from identity.cognito.mfa import user_mfa_fields
from identity.cognito.passwords import set_new_password
from identity.cognito.sessions import Sessions, user_attributes
from identity.keycloak.errors import PasswordRefused, UserExists
from identity.keycloak.gateway import KeycloakGateway
from identity.legacy.identifiers import normalise_identifiers
from identity.legacy.migration import LegacyMigration
from identity.legacy.models import MigrationState, utcnow
from identity.legacy.store import LegacyStore
from identity.signin.service import SignIn

log = logging.getLogger(__name__)
INVITATION_TEMPLATE = "invitation"


def user_status(user: dict, has_password: bool) -> str:
    actions = set(user.get("requiredActions") or [])
    state = ((user.get("attributes") or {}).get("migration_state") or [None])[0]
    if "UPDATE_PASSWORD" in actions:
        return "FORCE_CHANGE_PASSWORD"
    if "VERIFY_EMAIL" in actions:
        return "UNCONFIRMED"
    if state == "pending":
        return "CONFIRMED"
    if state == "reset_required" or not has_password:
        return "RESET_REQUIRED"
    return "CONFIRMED"


def user_type(user: dict, has_password: bool) -> dict:
    """Cognito's UserType of a Keycloak user (ListUsers' `Attributes`; AdminGetUser says `UserAttributes`)."""
    attributes = user_attributes(user)
    state = ((user.get("attributes") or {}).get("migration_state") or [None])[0]
    if state:
        attributes.append({"Name": "custom:migration_state", "Value": state})
    created = int(user.get("createdTimestamp") or 0) / 1000
    return {"Username": user["username"], "Attributes": attributes, "UserCreateDate": created,
            "UserLastModifiedDate": created, "Enabled": bool(user.get("enabled")),
            "UserStatus": user_status(user, has_password)}


def temporary_password() -> str:
    """One the realm's policy takes (every class of character, long), for an invitation."""
    alphabet = string.ascii_letters + string.digits
    body = "".join(secrets.choice(alphabet) for _ in range(14))
    return secrets.choice(string.ascii_uppercase) + body + secrets.choice(string.digits) + "!" + \
        secrets.choice(string.ascii_lowercase)


class AdminOperations:
    def __init__(self, keycloak: KeycloakGateway, migration: LegacyMigration, sign_in: SignIn, sessions: Sessions,
                 delivery: CodeDelivery, user_pool_id: str, reset_minutes: int = 60):
        self.keycloak, self.migration, self.sign_in, self.sessions = keycloak, migration, sign_in, sessions
        self.delivery, self.pool, self.reset_minutes = delivery, user_pool_id, reset_minutes
        self.store: LegacyStore = migration.store
        self.region = user_pool_id.partition("_")[0]   # Cognito's: the pool id's prefix

    def check_pool(self, request: dict) -> None:
        if request["UserPoolId"] != self.pool:
            raise errors.ResourceNotFoundError(f"User pool {request['UserPoolId'][:64]} does not exist.")

    def user(self, request: dict) -> dict:
        return self.user_and_row(request)[0]

    def user_and_row(self, request: dict) -> tuple[dict, object]:
        """The Keycloak user a Username names: a Kii user by loginName, email or phone, else Keycloak's
        username or email. UserNotFoundException otherwise (backends may know who exists)."""
        self.check_pool(request)
        name = request["Username"].strip()
        row = self.store.find(**normalise_identifiers(name))
        found = None
        if row is not None and row["keycloak_user_id"]:
            found = self.keycloak.get_user(row["keycloak_user_id"])
        if found is None:
            found = self.keycloak.find_user(email=name) if "@" in name else self.keycloak.find_user(username=name)
        if found is None:
            raise errors.UserNotFoundError("User does not exist.")
        if row is None or row["keycloak_user_id"] != found["id"]:
            row = self.store.for_keycloak_user(found["id"])
        return found, row

    def has_password(self, user: dict) -> bool:
        return self.keycloak.password_credential(user["id"]) is not None

    def audit(self, event: str, user: dict, request: dict, client_ip: str | None, **detail) -> None:
        audit.record_now(self.store.engine, event, utcnow(), keycloak_user_id=user["id"], path="admin",
                         client=client_ip, detail={"access_key": request.get("_caller"), **detail})

    # --- reading and the account's lifecycle ----------------------------------------------

    def admin_get_user(self, request: dict, client_ip=None) -> dict:
        user = self.user(request)
        described = user_type(user, self.has_password(user))
        described["UserAttributes"] = described.pop("Attributes")
        return {**described, **user_mfa_fields(user)}

    def admin_create_user(self, request: dict, client_ip=None) -> dict:
        """A user with a temporary password (given, or made here), invited by email unless SUPPRESS;
        RESEND: a new temporary password and invitation for a user who never signed in."""
        self.check_pool(request)
        if "SMS" in (request.get("DesiredDeliveryMediums") or []):
            raise errors.InvalidParameterError("SMS delivery is not available in this region; use EMAIL.")
        if request.get("MessageAction") == "RESEND":
            return self._reinvite(request, client_ip)
        username = request["Username"].strip()
        attributes, email, verified = admin_attributes(request.get("UserAttributes") or [])
        if "@" in username and not email:
            email = username.lower()
        if not email:
            raise errors.InvalidParameterError("Attributes did not conform to the schema: email is required")
        if self.store.find(**normalise_identifiers(username)) or self.store.find(email=email) \
                or self.keycloak.find_users(username=username) or self.keycloak.find_users(email=email):
            raise errors.UsernameExistsError()
        try:
            user_id = self.keycloak.create_user({"username": username.lower(), "email": email, "enabled": True,
                                                 "emailVerified": bool(verified), "attributes": attributes})
        except UserExists:
            raise errors.UsernameExistsError() from None
        password = request.get("TemporaryPassword") or temporary_password()
        try:
            self.keycloak.set_password(user_id, password, temporary=True)
        except PasswordRefused as exc:
            self.keycloak.delete_user(user_id)
            raise errors.policy_refusal(exc.error) from None
        user = self.keycloak.get_user(user_id)
        if request.get("MessageAction") != "SUPPRESS":
            self._invite(user, password)
        self.audit("admin_created", user, request, client_ip, invited=request.get("MessageAction") != "SUPPRESS")
        return {"User": user_type(user, True)}

    def _reinvite(self, request: dict, client_ip) -> dict:
        user = self.user(request)
        if user_status(user, True) != "FORCE_CHANGE_PASSWORD":
            raise errors.UnsupportedUserStateError("Resend not possible. User is not in FORCE_CHANGE_PASSWORD state")
        password = request.get("TemporaryPassword") or temporary_password()
        try:
            self.keycloak.set_password(user["id"], password, temporary=True)
        except PasswordRefused as exc:
            raise errors.policy_refusal(exc.error) from None
        self._invite(user, password)
        self.audit("admin_reinvited", user, request, client_ip)
        return {"User": user_type(self.keycloak.get_user(user["id"]), True)}

    def _invite(self, user: dict, password: str) -> None:
        if not user.get("email"):
            raise errors.InvalidParameterError("The user has no email to send the invitation to.")
        locale = ((user.get("attributes") or {}).get("locale") or [None])[0]
        self.delivery.mailer.submit(user["email"], INVITATION_TEMPLATE, locale,
                                    {"username": user["username"], "password": password},
                                    lambda error: error and log.error("invitation not delivered", extra={
                                        "error": error, "keycloak_user_id": user["id"]}))

    def admin_disable_user(self, request: dict, client_ip=None) -> dict:
        """The user cannot sign in, and every session of theirs ends (their tokens with it)."""
        user = self.user(request)
        self.keycloak.update_user(user["id"], {**user, "enabled": False})
        self.keycloak.logout_user(user["id"])
        self.audit("admin_disabled", user, request, client_ip)
        return {}

    def admin_enable_user(self, request: dict, client_ip=None) -> dict:
        user = self.user(request)
        self.keycloak.update_user(user["id"], {**user, "enabled": True})
        self.audit("admin_enabled", user, request, client_ip)
        return {}

    def admin_delete_user(self, request: dict, client_ip=None) -> dict:
        """Gone from Keycloak, and nothing of theirs stays in the legacy store."""
        user = self.user(request)
        self.keycloak.delete_user(user["id"])
        self.migration.forget_user(user["id"], client=client_ip)
        self.audit("admin_deleted", user, request, client_ip)
        return {}

    def admin_user_global_sign_out(self, request: dict, client_ip=None) -> dict:
        user = self.user(request)
        self.keycloak.logout_user(user["id"])
        self.audit("admin_signed_out", user, request, client_ip)
        return {}

    # --- passwords ----------------------------------------------------------------------------

    def admin_set_user_password(self, request: dict, client_ip=None) -> dict:
        """Permanent: the user's password from now on; else temporary (FORCE_CHANGE_PASSWORD: the next
        sign-in asks for a new one). A Kii user's legacy hash ends either way."""
        user, row = self.user_and_row(request)
        temporary = not request.get("Permanent", False)
        try:
            set_new_password(self.keycloak, self.migration, self.sign_in, user, row, request["Password"], client_ip,
                             via="admin", temporary=temporary)
        except PasswordRefused as exc:
            raise errors.policy_refusal(exc.error) from None
        self.audit("admin_password_set", user, request, client_ip, permanent=not temporary)
        return {}

    def admin_reset_user_password(self, request: dict, client_ip=None) -> dict:
        """The password stops working (a Kii user's legacy hash goes for good), the user's sessions end,
        and a reset code goes to their verified email: ConfirmForgotPassword sets the new one."""
        user, row = self.user_and_row(request)
        if not can_reset(user, row):
            raise errors.InvalidParameterError(
                "Cannot reset password for the user as there is no registered/verified email or phone_number")
        if row is not None and row["state"] != MigrationState.migrated.value:
            self.migration.require_reset(row["kii_user_id"], via="admin", client=client_ip)
            self.keycloak.set_migration_state(user["id"], row["kii_user_id"], "reset_required")
        self.keycloak.remove_password(user["id"])
        self.keycloak.logout_user(user["id"])
        self.delivery.send(user, "reset", "reset", user["email"], self.reset_minutes)
        self.audit("admin_password_reset", user, request, client_ip)
        return {}

    # --- attributes -------------------------------------------------------------------------

    def admin_update_user_attributes(self, request: dict, client_ip=None) -> dict:
        """As the user's UpdateUserAttributes, and an administrator may mark email and phone verified."""
        user = self.user(request)
        attributes, email, verified = admin_attributes(request["UserAttributes"])
        update = {"attributes": merged_attributes(user, attributes)}
        if email and email != user.get("email"):
            if self.keycloak.find_users(email=email) or self.store.find(email=email):
                raise errors.AliasExistsError()
            update.update(email=email, emailVerified=bool(verified))
        elif verified is not None:
            update["emailVerified"] = verified
        self.keycloak.update_user(user["id"], {**user, **update})
        self.audit("admin_attributes_set", user, request, client_ip,
                   names=sorted(a["Name"] for a in request["UserAttributes"]))
        return {}

    def admin_delete_user_attributes(self, request: dict, client_ip=None) -> dict:
        user = self.user(request)
        stored = [deletable(name) for name in request["UserAttributeNames"]]
        self.keycloak.update_user(user["id"], {**user, "attributes": without_attributes(user, stored)})
        self.audit("admin_attributes_deleted", user, request, client_ip, names=sorted(request["UserAttributeNames"]))
        return {}

    # --- signing a user in (a backend's own login form) ---------------------------------------

    def admin_initiate_auth(self, request: dict, client_ip=None) -> dict:
        """ADMIN_USER_PASSWORD_AUTH (and its old name ADMIN_NO_SRP_AUTH) is the password sign-in of
        InitiateAuth, Kii users' first login included; REFRESH_TOKEN_AUTH as there."""
        self.check_pool(request)
        flow = request["AuthFlow"]
        if flow in ("ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"):
            flow = "USER_PASSWORD_AUTH"
        elif flow not in ("REFRESH_TOKEN_AUTH", "REFRESH_TOKEN"):
            raise errors.InvalidParameterError(f"Unsupported AuthFlow: {flow}"[:200])
        return self.sessions.initiate_auth({**request, "AuthFlow": flow}, client_ip)

    def admin_respond_to_auth_challenge(self, request: dict, client_ip=None) -> dict:
        self.check_pool(request)
        return self.sessions.respond_to_auth_challenge(request, client_ip)
