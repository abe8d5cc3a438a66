"""The Cognito admin operations backends call, signed with SigV4 (identity.cognito.sigv4) by an access key
(identity.access_keys). No Flask here. Each takes the validated request, with the calling key's name
under "_caller", and answers for the one pool, IDENTITY_USER_POOL_ID.

UserStatus (docs/admin-api.md): FORCE_CHANGE_PASSWORD (Keycloak's UPDATE_PASSWORD pending),
UNCONFIRMED (a sign-up whose email code has not come back), RESET_REQUIRED (a Kii user without a
usable hash, or a user without a password), CONFIRMED otherwise, a Kii user not migrated yet
included: their old password signs them in. `custom:kii_user_id` and `custom:migration_state` say
which users came from Kii and where their migration stands.
"""

from __future__ import annotations

from identity import audit
from identity.cognito import errors
from identity.cognito.passwords import set_new_password
from identity.cognito.mfa import user_mfa_fields
from identity.cognito.sessions import user_attributes
from identity.keycloak.errors import PasswordRefused
from identity.keycloak.gateway import KeycloakGateway
from identity.legacy.migration import LegacyMigration
from identity.legacy.identifiers import normalise_identifiers
from identity.legacy.models import utcnow
from identity.legacy.store import LegacyStore
from identity.signin.service import SignIn


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


class AdminOperations:
    def __init__(self, keycloak: KeycloakGateway, migration: LegacyMigration, sign_in: SignIn, user_pool_id: str):
        self.keycloak, self.migration, self.sign_in, self.pool = keycloak, migration, sign_in, user_pool_id
        self.store: LegacyStore = migration.store
        self.region = user_pool_id.partition("_")[0]   # Cognito's: the pool id's prefix

    def _pool(self, request: dict) -> None:
        if request["UserPoolId"] != self.pool:
            raise errors.ResourceNotFoundError(f"User pool {request['UserPoolId'][:64]} does not exist.")

    def _user(self, request: dict) -> dict:
        return self._user_and_row(request)[0]

    def _user_and_row(self, request: dict) -> tuple[dict, object]:
        """The Keycloak user a Username names: a Kii user by loginName, email or phone, else Keycloak's
        username or email. UserNotFoundException otherwise (backends may know who exists)."""
        self._pool(request)
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

    def _audit(self, event: str, user: dict, request: dict, client_ip: str | None) -> None:
        audit.record_now(self.store.engine, event, utcnow(), keycloak_user_id=user["id"], path="admin",
                         client=client_ip, detail={"access_key": request.get("_caller")})

    def admin_get_user(self, request: dict, client_ip=None) -> dict:
        user = self._user(request)
        has_password = self.keycloak.password_credential(user["id"]) is not None
        attributes = user_attributes(user)
        state = ((user.get("attributes") or {}).get("migration_state") or [None])[0]
        if state:
            attributes.append({"Name": "custom:migration_state", "Value": state})
        created = int(user.get("createdTimestamp") or 0) / 1000
        return {"Username": user["username"], "UserAttributes": attributes, "UserCreateDate": created,
                "UserLastModifiedDate": created, "Enabled": bool(user.get("enabled")),
                "UserStatus": user_status(user, has_password), **user_mfa_fields(user)}

    def admin_disable_user(self, request: dict, client_ip=None) -> dict:
        """The user cannot sign in, and every session of theirs ends (their tokens with it)."""
        user = self._user(request)
        self.keycloak.update_user(user["id"], {**user, "enabled": False})
        self.keycloak.logout_user(user["id"])
        self._audit("admin_disabled", user, request, client_ip)
        return {}

    def admin_enable_user(self, request: dict, client_ip=None) -> dict:
        user = self._user(request)
        self.keycloak.update_user(user["id"], {**user, "enabled": True})
        self._audit("admin_enabled", user, request, client_ip)
        return {}

    def admin_set_user_password(self, request: dict, client_ip=None) -> dict:
        """Permanent: the user's password from now on; else temporary (FORCE_CHANGE_PASSWORD: the next
        sign-in asks for a new one). A Kii user's legacy hash ends either way."""
        user, row = self._user_and_row(request)
        temporary = not request.get("Permanent", False)
        try:
            set_new_password(self.keycloak, self.migration, self.sign_in, user, row, request["Password"], client_ip,
                             via="admin", temporary=temporary)
        except PasswordRefused as exc:
            raise errors.policy_refusal(exc.error) from None
        self._audit("admin_password_set", user, request, client_ip)
        return {}

    def admin_user_global_sign_out(self, request: dict, client_ip=None) -> dict:
        user = self._user(request)
        self.keycloak.logout_user(user["id"])
        self._audit("admin_signed_out", user, request, client_ip)
        return {}

    def admin_delete_user(self, request: dict, client_ip=None) -> dict:
        """Gone from Keycloak, and nothing of theirs stays in the legacy store."""
        user = self._user(request)
        self.keycloak.delete_user(user["id"])
        self.migration.forget_user(user["id"], client=client_ip)
        self._audit("admin_deleted", user, request, client_ip)
        return {}
