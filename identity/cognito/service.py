"""The Cognito operations, backed by Keycloak and the legacy store. No Flask here.

Each public method takes the operation's validated request (a dict) and the
client's address, and returns the response body or raises a CognitoError.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
import time

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from identity.cognito import errors
from identity.cognito.clients import AppClients
from identity.cognito.identifiers import normalise_identifiers
from identity.cognito.lifecycle import AccountOperations
from identity.cognito.throttle import ClientThrottle
from identity.keycloak.gateway import KeycloakGateway
from identity.keycloak.oidc import OIDC, KeycloakUnavailable, OAuthError
from identity.legacy import hashes
from identity.legacy.migration import Attempt, LegacyMigration, Outcome
from identity.locks import LockTimeout, sign_in_lock
from identity.metrics import ADMIN_CALLS, JWKS_FETCHES, KEYCLOAK_BUSY_RETRIES, LOCKOUTS, MIGRATION_TICKETS, SIGN_INS

log = logging.getLogger(__name__)
JWKS_TTL = 300
JWKS_REFETCH_SECONDS = 30  # the shortest time between two fetches of the signing keys


def token_kid(token: str) -> str | None:
    """The `kid` a compact JWS names in its header (read, not trusted: it only picks a key); None if malformed."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, TypeError, RecursionError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) and kid else None


class CognitoService(AccountOperations):
    def __init__(self, oidc: OIDC, admin_factory, realm: str, clients: AppClients,
                 migration: LegacyMigration, throttle: ClientThrottle, failure_floor_s: float = 0.25,
                 codes=None, mailer=None, reset_minutes: int = 60, signup_hours: int = 24, idle=None):
        self.oidc = oidc
        self.admin_factory = admin_factory   # -> python-keycloak admin (token reused per process)
        self.realm = realm
        self.clients = clients               # client id -> secret (None for public clients); proofs in clients.py
        self.migration = migration
        self.throttle = throttle
        self.failure_floor_s = failure_floor_s
        self.codes, self.mailer, self.reset_minutes = codes, mailer, reset_minutes
        self.signup_hours = signup_hours
        self.lock_timeout_s = max(5.0, oidc.timeout * 2)
        # (resume: bool) -> context in which this request only waits: its admission slot goes back.
        self.idle = idle or (lambda resume=True: contextlib.nullcontext())
        self._jwks: tuple[float, KeySet] | None = None   # (fetched at, keys)
        self._jwks_tried: float | None = None             # the last fetch started, failed or not
        self._jwks_lock = threading.Lock()

    # --- helpers -------------------------------------------------------------------

    def client(self, client_id: str) -> str | None:
        return self.clients.require(client_id)

    def check_secret_hash(self, request: dict) -> str | None:
        """The request's client, proved by its SecretHash for its Username when it has a secret
        (SignUp, ConfirmSignUp, ResendConfirmationCode, ForgotPassword, ConfirmForgotPassword)."""
        return self.clients.check_secret_hash(request["ClientId"], request.get("Username"), request.get("SecretHash"))

    @staticmethod
    def authentication_result(tokens: dict, with_refresh: bool = True) -> dict:
        result = {"AccessToken": tokens["access_token"], "IdToken": tokens.get("id_token", ""),
                  "ExpiresIn": int(tokens.get("expires_in", 3600)), "TokenType": "Bearer"}
        if with_refresh and tokens.get("refresh_token"):
            result["RefreshToken"] = tokens["refresh_token"]
        return {"AuthenticationResult": result, "ChallengeParameters": {}}

    # --- InitiateAuth ----------------------------------------------------------------

    def initiate_auth(self, request: dict, client_ip: str | None) -> dict:
        client_id, flow, params = request["ClientId"], request["AuthFlow"], request["AuthParameters"]
        secret = self.client(client_id)
        if flow == "USER_PASSWORD_AUTH":
            for name in ("USERNAME", "PASSWORD"):
                if not params.get(name):
                    raise errors.InvalidParameterError(f"Missing required parameter {name}")
            self.clients.check_secret_hash(client_id, params["USERNAME"], params.get("SECRET_HASH"))
            return self.password_sign_in(client_id, secret, params["USERNAME"], params["PASSWORD"], client_ip)
        if flow in ("REFRESH_TOKEN_AUTH", "REFRESH_TOKEN"):
            if not params.get("REFRESH_TOKEN"):
                raise errors.InvalidParameterError("Missing required parameter REFRESH_TOKEN")
            self.clients.check_secret_hash(client_id, params.get("USERNAME"), params.get("SECRET_HASH"))
            try:
                tokens = self.oidc.refresh_grant(client_id, secret, params["REFRESH_TOKEN"])
            except OAuthError:
                raise errors.RefreshTokenRevokedError() from None
            except KeycloakUnavailable:
                raise errors.InternalError() from None
            return self.authentication_result(tokens, with_refresh=False)
        raise errors.InvalidParameterError(f"Unsupported AuthFlow: {flow}"[:200])

    def password_sign_in(self, client_id, secret, username, password, client_ip) -> dict:
        started = time.monotonic()
        try:
            result = self._password_sign_in(client_id, secret, username, password, client_ip)
        except errors.CognitoError as exc:
            SIGN_INS.labels(exc.type, "api").inc()
            if isinstance(exc, errors.PasswordAttemptsExceededError):
                LOCKOUTS.labels("sign_in").inc()
            if isinstance(exc, errors.NotAuthorizedError):
                # Every refusal takes at least the floor: unknown user, wrong password, Kii or
                # migrated user, locked or not, all answer after the same time.
                with self.idle(resume=False):
                    time.sleep(max(0.0, self.failure_floor_s - (time.monotonic() - started)))
            raise
        SIGN_INS.labels("success", result.pop("_path")).inc()
        return result

    def _password_sign_in(self, client_id, secret, username, password, client_ip) -> dict:
        if self.throttle.blocked(client_ip):
            raise errors.PasswordAttemptsExceededError()
        if not hashes.usable_password(username):  # the same rule: text that is not text names no one
            self.throttle.failure(client_ip)
            raise errors.NotAuthorizedError()
        keycloak_username = username
        try:
            row = self.migration.find(**normalise_identifiers(username))
        except Exception:
            log.exception("legacy store unavailable")
            raise errors.InternalError() from None
        if row is not None:
            keycloak_username = row["username"] or row["email"] or username
        with self.user_lock(keycloak_username):
            return self._sign_in_locked(client_id, secret, keycloak_username, password, client_ip, row)

    @contextlib.contextmanager
    def user_lock(self, keycloak_username: str):
        """The lock every password check of one user runs under, across processes: a first login
        migrates once, and Keycloak is never asked about the same user twice at once."""
        try:
            with contextlib.ExitStack() as held:
                with self.idle():  # queueing behind the user's other sign-ins is not work
                    held.enter_context(sign_in_lock(self.migration.engine, keycloak_username, self.lock_timeout_s))
                yield
        except LockTimeout:
            raise errors.TooManyRequestsError() from None

    def _sign_in_locked(self, client_id, secret, keycloak_username, password, client_ip, row) -> dict:
        if row is not None:
            row = self.migration.get(row["kii_user_id"])  # as it is now that this sign-in holds the lock
        if row is not None:
            if row["state"] != "migrated":
                attempt = self._legacy_attempt(row, password, client_ip, client_id)
                outcome = attempt.outcome
                if outcome in (Outcome.WRONG_PASSWORD, Outcome.RESET_REQUIRED) and \
                        self._reset_at_keycloak(row, client_ip):
                    outcome = Outcome.ALREADY_MIGRATED
                if outcome is Outcome.WRONG_PASSWORD or outcome is Outcome.LOCKED:
                    self.throttle.failure(client_ip)
                    if outcome is Outcome.LOCKED:
                        raise errors.PasswordAttemptsExceededError()
                    raise errors.NotAuthorizedError()
                if outcome is Outcome.RESET_REQUIRED:
                    raise errors.PasswordResetRequiredError()
                if outcome is Outcome.DISABLED:
                    raise errors.UserDisabledError()
                # MIGRATED or ALREADY_MIGRATED: Keycloak holds the password now.
                path = "first_login" if outcome is Outcome.MIGRATED else "native"
                tokens = self._keycloak_grant(client_id, secret, keycloak_username, password, client_ip,
                                              row["keycloak_user_id"], ticket=attempt.ticket)
                return {**self.authentication_result(tokens), "_path": path}
        tokens = self._keycloak_grant(client_id, secret, keycloak_username, password, client_ip)
        return {**self.authentication_result(tokens), "_path": "native"}

    def _reset_at_keycloak(self, row, client_ip) -> bool:
        """A Kii user who reset their password at Keycloak's own pages since the import: Keycloak
        holds it (its provider marked the user migrated), so the legacy hash goes and Keycloak
        judges the password. Asked only when the legacy password did not match or there is none."""
        user = self._admin_call(lambda a: a.get_user(row["keycloak_user_id"]))
        if (user.get("attributes") or {}).get("migration_state") != ["migrated"]:
            return False
        self.migration.mark_migrated(row["kii_user_id"], via="keycloak", client=client_ip)
        return True

    def _legacy_attempt(self, row, password, client_ip=None, client_id=None) -> Attempt:
        try:
            return self.migration.attempt(row, password, path="api", client=client_ip, ticket_for=client_id)
        except KeycloakUnavailable:
            raise errors.InternalError() from None
        except errors.CognitoError:
            raise
        except Exception:
            log.exception("first-login migration failed")
            raise errors.InternalError() from None

    def _keycloak_grant(self, client_id, secret, username, password, client_ip, user_id=None, ticket=None) -> dict:
        # Keycloak refuses a password check while its brute-force bookkeeping of the same user's
        # previous login still runs (asynchronously, after that login's response): the answer is
        # "Invalid user credentials" even for the right password. This runs under the per-user
        # lock, so such a refusal can only be that leftover; Keycloak's LOGIN_ERROR event tells it
        # apart from a wrong password, and the check is repeated once the bookkeeping is done.
        deadline = time.monotonic() + self.lock_timeout_s / 2
        pause = 0.05
        if not hashes.usable_password(password):
            # Never sent (a lone surrogate cannot even be encoded): Keycloak judges a stand-in no account
            # holds, so the attempt is refused and counted exactly as a wrong password.
            password = ""
        while True:
            sent_ms = int(time.time() * 1000)
            try:
                tokens = self.oidc.password_grant(client_id, secret, username, password,
                                                  scope="openid aws.cognito.signin.user.admin", migration_ticket=ticket)
            except KeycloakUnavailable:
                raise errors.InternalError() from None
            except OAuthError as exc:
                plain = exc.error == "invalid_grant" and "invalid user credentials" in exc.description.lower()
                if not plain:
                    self._refusal(exc, client_id, username, client_ip)
                reason = self._refusal_reason(username, user_id, client_id, sent_ms)
                if reason == "locked":
                    raise errors.PasswordAttemptsExceededError() from None
                if reason != "busy":
                    if not ticket:
                        self._refusal(exc, client_id, username, client_ip)
                    # Keycloak judged a first login's ticket and refused it (a "busy" refusal comes
                    # before the ticket step and leaves it unspent). Keycloak holds the password
                    # now, so the ordinary check decides, once.
                    ticket = None
                    MIGRATION_TICKETS.labels("refused").inc()
                    log.warning("migration ticket refused; checking the password instead")
                    continue
                if time.monotonic() + pause > deadline:
                    # Still busy when the time is up: the password was never judged, so it is not called
                    # wrong (nor counted); the app is told to try again.
                    raise errors.TooManyRequestsError() from None
                KEYCLOAK_BUSY_RETRIES.inc()
                time.sleep(pause)
                pause = min(pause * 2, 0.5)
                continue
            if ticket:
                MIGRATION_TICKETS.labels("used").inc()
            return tokens

    def _refusal_reason(self, username, user_id, client_id, sent_ms) -> str:
        """Why Keycloak refused a grant: 'busy' (its brute-force bookkeeping of an earlier login
        was still running), 'locked' (a real lockout) or 'credentials' (anything else); Cognito's
        InternalErrorException when the Admin API cannot tell."""
        try:
            admin = self.admin_factory()
            if user_id is None:
                found = admin.get_users({"username": username.lower(), "exact": True})
                if len(found) != 1:
                    return "credentials"
                user_id = found[0]["id"]
            gateway = KeycloakGateway(admin, self.realm)
            event = gateway.last_login_error(user_id, client_id)
            # Clocks of two hosts: a second of slack; a stale event only costs one more check.
            if event is None or event.get("time", 0) < sent_ms - 1000 \
                    or event.get("error") != "user_temporarily_disabled":
                return "credentials"
            status = gateway.brute_force_status(user_id)
        except Exception as exc:
            # Without the explanation a right password could be answered as a wrong one (Keycloak
            # still busy with the previous login): the service says it cannot answer instead.
            ADMIN_CALLS.labels("error").inc()
            log.warning("could not explain a Keycloak refusal", extra={"error": type(exc).__name__})
            raise errors.InternalError() from None
        return "locked" if status.get("disabled") else "busy"

    def _refusal(self, exc: OAuthError, client_id, username, client_ip):
        """Keycloak's refusal of a password grant, as the Cognito error the app expects."""
        description = exc.description.lower()
        if "temporarily disabled" in description or "temporarily locked" in description:
            raise errors.PasswordAttemptsExceededError() from None
        if "disabled" in description:
            raise errors.UserDisabledError() from None
        if "not fully set up" in description:
            # The password was right; what is missing: a confirmed sign-up, or a new password.
            if self._required_actions(username) == ["VERIFY_EMAIL"]:
                raise errors.UserNotConfirmedError() from None
            raise errors.PasswordResetRequiredError() from None
        if exc.error == "invalid_client" or exc.error == "unauthorized_client":
            raise errors.NotAuthorizedError(f"Client {client_id} is not allowed this flow") from None
        self.throttle.failure(client_ip)
        raise errors.NotAuthorizedError() from None

    def _required_actions(self, username: str) -> list[str]:
        found = self._admin_call(lambda a: a.get_users({"username": username.lower(), "exact": True}))
        return list(found[0].get("requiredActions") or []) if len(found) == 1 else []

    # --- access-token operations ---------------------------------------------------------

    def _keyset(self, kid: str) -> KeySet:
        """Keycloak's signing keys, fetched when the copy is older than JWKS_TTL or lacks `kid`, but at
        most once per JWKS_REFETCH_SECONDS: tokens naming keys nobody has cannot make the service
        hammer Keycloak, and a key Keycloak rotates in is found within that interval."""
        with self._jwks_lock:
            now = time.monotonic()
            if self._jwks is not None:
                fetched, keys = self._jwks
                current = now - fetched <= JWKS_TTL and any(key.kid == kid for key in keys.keys)
                if current or (self._jwks_tried is not None and now - self._jwks_tried < JWKS_REFETCH_SECONDS):
                    return keys  # a stale copy still verifies while Keycloak cannot be asked again yet
            elif self._jwks_tried is not None and now - self._jwks_tried < JWKS_REFETCH_SECONDS:
                raise KeycloakUnavailable("signing keys not fetched yet")
            self._jwks_tried = now
            self._jwks = (now, KeySet.import_key_set(self.jwks()))
            return self._jwks[1]

    def jwks(self) -> dict:
        """Keycloak's signing keys as Cognito publishes them (RS256 signature keys only)."""
        JWKS_FETCHES.inc()
        keys = [k for k in self.oidc.certs().get("keys", []) if k.get("use", "sig") == "sig" and k.get("alg") == "RS256"]
        return {"keys": keys}

    def verify_access_token(self, token: str) -> dict:
        """Cognito's verifier: signature by kid, iss, exp, token_use; then the session must be alive."""
        kid = token_kid(token)
        if kid is None:  # not a signed JWT naming its key: no key could verify it
            raise errors.NotAuthorizedError("Invalid Access Token")
        try:
            keys = self._keyset(kid)
        except (KeycloakUnavailable, OSError):  # requests' errors are OSErrors
            raise errors.InternalError() from None
        try:
            claims = jwt.decode(token, keys, algorithms=["RS256"]).claims
            jwt.JWTClaimsRegistry(iss={"essential": True, "value": self.oidc.issuer},
                                  exp={"essential": True}).validate(claims)
        except (JoseError, ValueError, TypeError):
            raise errors.NotAuthorizedError("Invalid Access Token") from None
        if claims.get("token_use") != "access" or claims.get("client_id") not in self.clients:
            raise errors.NotAuthorizedError("Invalid Access Token")
        try:
            self.oidc.userinfo(token)
        except OAuthError:
            raise errors.AccessTokenRevokedError() from None
        except KeycloakUnavailable:
            raise errors.InternalError() from None
        return claims

    def get_user(self, request: dict, client_ip=None) -> dict:
        claims = self.verify_access_token(request["AccessToken"])
        user = self._admin_call(lambda admin: admin.get_user(claims["sub"]))
        attributes = [{"Name": "sub", "Value": user["id"]}]
        if user.get("email"):
            attributes += [{"Name": "email", "Value": user["email"]},
                           {"Name": "email_verified", "Value": "true" if user.get("emailVerified") else "false"}]
        for name, values in sorted((user.get("attributes") or {}).items()):
            if not values:
                continue
            if name == "kii_user_id":
                attributes.append({"Name": "custom:kii_user_id", "Value": values[0]})
            elif name.startswith("custom."):
                attributes.append({"Name": "custom:" + name[len("custom."):], "Value": values[0]})
            elif name in ("phone_number", "phone_number_verified", "locale", "name"):
                attributes.append({"Name": name, "Value": values[0]})
        return {"Username": user["username"], "UserAttributes": attributes}

    def global_sign_out(self, request: dict, client_ip=None) -> dict:
        claims = self.verify_access_token(request["AccessToken"])
        self._admin_call(lambda admin: admin.user_logout(claims["sub"]))
        return {}

    def revoke_token(self, request: dict, client_ip=None) -> dict:
        client_id = request["ClientId"]
        secret = self.clients.check_client_secret(client_id, request.get("ClientSecret"))
        try:
            self.oidc.revoke(client_id, secret, request["Token"])
        except OAuthError as exc:
            if exc.error in ("unauthorized_client", "invalid_client"):
                raise errors.NotAuthorizedError("Invalid client for this token") from None
        except KeycloakUnavailable:
            raise errors.InternalError() from None
        return {}

    def _admin_call(self, call):
        try:
            result = call(self.admin_factory())
        except errors.CognitoError:
            raise
        except Exception as exc:  # python-keycloak raises its own errors for HTTP and connection failures
            ADMIN_CALLS.labels("error").inc()
            log.warning("admin API call failed", extra={"error": type(exc).__name__})
            raise errors.InternalError() from None
        ADMIN_CALLS.labels("ok").inc()
        return result
