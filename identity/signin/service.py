"""The sign-in use case (identity.signin says what it does)."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Callable, ContextManager, Protocol

from identity.keycloak.errors import GrantRefused, KeycloakUnavailable
from identity.keycloak.oidc import unverified_claims
from identity.legacy import hashes
from identity.legacy.identifiers import normalise_identifiers
from identity.legacy.migration import LegacyMigration, Outcome
from identity.legacy.models import MigrationState
from identity.locks import LockTimeout
from identity.signin.outcomes import Result, SignInOutcome

log = logging.getLogger(__name__)

# Refusals that say no more than "no": each takes at least the floor, so that an unknown user, a
# wrong password, a Kii or a migrated user, locked or not, all answer after the same time.
FLOORED = frozenset({Result.WRONG_PASSWORD, Result.LOCKED, Result.THROTTLED, Result.DISABLED,
                     Result.CLIENT_NOT_ALLOWED})
LEGACY_RESULTS = {Outcome.WRONG_PASSWORD: Result.WRONG_PASSWORD, Outcome.LOCKED: Result.LOCKED,
                  Outcome.RESET_REQUIRED: Result.RESET_REQUIRED, Outcome.DISABLED: Result.DISABLED,
                  Outcome.MIGRATED: Result.MIGRATED, Outcome.ALREADY_MIGRATED: Result.KEYCLOAK_JUDGES}
GRANT_RESULTS = {"credentials": Result.WRONG_PASSWORD, "locked": Result.LOCKED, "disabled": Result.DISABLED,
                 "not_confirmed": Result.NOT_CONFIRMED, "reset_required": Result.RESET_REQUIRED,
                 "client_not_allowed": Result.CLIENT_NOT_ALLOWED, "busy": Result.BUSY,
                 "code_mismatch": Result.CODE_MISMATCH}
# Refusals that come after the password was found right: the sign-in goes on with a challenge.
CHALLENGE_RESULTS = {"new_password_required": Result.NEW_PASSWORD_REQUIRED, "mfa_required": Result.MFA_REQUIRED,
                     "mfa_setup": Result.MFA_SETUP}


class Grants(Protocol):
    """Keycloak's password grant (identity.keycloak.grants.PasswordGrants)."""

    def grant(self, client_id: str, secret: str | None, username: str, password: str,
              user_id: str | None = None, ticket: str | None = None, otp: str | None = None) -> dict: ...


class PasswordSeen(Protocol):
    """Told of every password the service saw to be right (identity.signin.verifiers keeps SRP verifiers)."""

    def __call__(self, keycloak_user_id: str, username: str, password: str) -> None: ...


class Throttle(Protocol):
    """Failures per client address (identity.cognito.throttle.ClientThrottle)."""

    def blocked(self, client: str | None) -> bool: ...

    def failure(self, client: str | None) -> None: ...


def lock_name(row, typed: str) -> str:
    """Whose sign-in lock an attempt takes: the user's Keycloak username, as the import named it
    (loginName, else email), or the name typed for a user the legacy store does not know."""
    if row is not None:
        return row["username"] or row["email"] or typed
    return typed


class SignIn:
    def __init__(self, migration: LegacyMigration, grants: Grants, throttle: Throttle,
                 lock: Callable[[str], ContextManager], failure_floor_s: float = 0.25,
                 idle: Callable[..., ContextManager] | None = None, sleep: Callable[[float], None] = time.sleep,
                 password_seen: PasswordSeen | None = None):
        self.migration = migration
        self.store = migration.store
        self.grants = grants
        self.throttle = throttle
        self.lock = lock                      # name -> the cross-process lock of that user's sign-ins
        self.failure_floor_s = failure_floor_s
        # (resume: bool) -> context in which this request only waits: its admission slot goes back.
        self.idle = idle or (lambda resume=True: contextlib.nullcontext())
        self.sleep = sleep
        self.password_seen = password_seen

    # --- the JSON API: a password for tokens -------------------------------------------------

    def with_password(self, client_id: str, secret: str | None, username: str, password: str,
                      client_ip: str | None) -> SignInOutcome:
        started = time.monotonic()
        return self.floored(started, self._with_password(client_id, secret, username, password, client_ip))

    def floored(self, started: float, outcome: SignInOutcome) -> SignInOutcome:
        """`outcome`, not before the floor when it is a refusal that says no more than "no"."""
        if outcome.result in FLOORED:
            with self.idle(resume=False):
                self.sleep(max(0.0, self.failure_floor_s - (time.monotonic() - started)))
        return outcome

    def _with_password(self, client_id, secret, username, password, client_ip) -> SignInOutcome:
        if self.throttle.blocked(client_ip):
            return SignInOutcome(Result.THROTTLED)
        if not hashes.usable_password(username):  # the same rule: text that is not text names no one
            self.throttle.failure(client_ip)
            return SignInOutcome(Result.WRONG_PASSWORD)
        try:
            row = self.store.find(**normalise_identifiers(username))
        except Exception:
            log.exception("legacy store unavailable")
            return SignInOutcome(Result.UNAVAILABLE)
        name = lock_name(row, username)
        return self.locked(name, lambda: self._check_and_grant(client_id, secret, name, password, client_ip, row))

    def _check_and_grant(self, client_id, secret, name, password, client_ip, row) -> SignInOutcome:
        user_id, ticket, path = None, None, "native"
        if row is not None:
            row = self.store.get(row["kii_user_id"])  # as it is now that this sign-in holds the lock
        if row is not None and row["state"] != MigrationState.migrated.value:
            result, ticket = self._legacy_step(row, password, "api", client_ip, ticket_for=client_id)
            if result not in (Result.MIGRATED, Result.KEYCLOAK_JUDGES):
                return SignInOutcome(result)
            user_id, path = row["keycloak_user_id"], "first_login" if result is Result.MIGRATED else "native"
        elif row is not None:
            user_id = row["keycloak_user_id"]
        outcome = self._grant(client_id, secret, name, password, client_ip, user_id, ticket, path)
        if outcome.signed_in:
            claims = unverified_claims(outcome.tokens["access_token"])
            self.seen(claims.get("sub"), claims.get("username"), password)
        return outcome

    def seen(self, keycloak_user_id: str | None, username: str | None, password: str) -> None:
        """A right password passed through the service: those that keep something of it are told. Best
        effort: the sign-in stands whatever they do."""
        if self.password_seen is None or not keycloak_user_id or not username:
            return
        try:
            self.password_seen(keycloak_user_id, username, password)
        except Exception as exc:
            log.warning("could not keep what a password sign-in offered", extra={"error": type(exc).__name__})

    def grant_with_ticket(self, client_id: str, secret: str | None, username: str, user_id: str, ticket: str,
                          client_ip: str | None, otp: str | None = None) -> SignInOutcome:
        """Tokens for a user the service has proved itself (SRP, a challenge answered), with the
        provider's single-use ticket; `otp`: the code of the user's authenticator app."""
        return self._grant(client_id, secret, username, "", client_ip, user_id, ticket, "srp", otp)

    # --- Keycloak's login page: is this legacy password right? ---------------------------------

    def check_legacy(self, keycloak_user_id: str, password: str, client_ip: str | None) -> SignInOutcome:
        """The bridge's question for a Keycloak user without a Keycloak password. MIGRATED: it was
        right, and Keycloak holds it now; KEYCLOAK_JUDGES: Keycloak holds a password already."""
        try:
            row = self.store.for_keycloak_user(keycloak_user_id)
        except Exception:
            log.exception("legacy store unavailable")
            return SignInOutcome(Result.UNAVAILABLE)
        if row is None:
            return SignInOutcome(Result.NOT_A_LEGACY_USER)

        def check() -> SignInOutcome:
            current = self.store.get(row["kii_user_id"])
            result = self._legacy_step(current, password, "bridge", client_ip)[0]
            if result is Result.MIGRATED:
                self.seen(keycloak_user_id, lock_name(row, keycloak_user_id), password)
            return SignInOutcome(result)

        return self.locked(lock_name(row, keycloak_user_id), check)

    # --- ChangePassword: the previous password, checked as a sign-in is ---------------------------

    def verify_current_password(self, client_id: str, secret: str | None, username: str, user_id: str,
                                password: str, client_ip: str | None) -> SignInOutcome:
        """Keycloak judges the password of a signed-in user, under their lock, wrong ones counted;
        SIGNED_IN carries the check's own tokens (the caller ends that session)."""
        return self.locked(username, lambda: self._grant(client_id, secret, username, password, client_ip,
                                                          user_id, None, "native"))

    # --- the steps ------------------------------------------------------------------------------

    def locked(self, name: str, step: Callable[[], SignInOutcome]) -> SignInOutcome:
        """`step` under the user's sign-in lock, across processes: a first login migrates once, and
        Keycloak is never asked about the same user twice at once."""
        try:
            with contextlib.ExitStack() as held:
                with self.idle():  # queueing behind the user's other sign-ins is not work
                    held.enter_context(self.lock(name))
                return step()
        except LockTimeout:
            return SignInOutcome(Result.BUSY)

    def _legacy_step(self, row, password, path, client_ip, ticket_for=None) -> tuple[Result, str | None]:
        try:
            attempt = self.migration.attempt(row, password, path=path, client=client_ip, ticket_for=ticket_for)
        except KeycloakUnavailable:
            return Result.UNAVAILABLE, None
        except Exception:
            log.exception("first-login migration failed")
            return Result.UNAVAILABLE, None
        if attempt.outcome in (Outcome.WRONG_PASSWORD, Outcome.LOCKED) and path == "api":
            self.throttle.failure(client_ip)
        return LEGACY_RESULTS[attempt.outcome], attempt.ticket

    def _grant(self, client_id, secret, username, password, client_ip, user_id, ticket, path,
               otp=None) -> SignInOutcome:
        if not hashes.usable_password(password):
            # Never sent (a lone surrogate cannot even be encoded): Keycloak judges a stand-in no account
            # holds, so the attempt is refused and counted exactly as a wrong password.
            password = ""
        try:
            tokens = self.grants.grant(client_id, secret, username, password, user_id=user_id, ticket=ticket,
                                       otp=otp)
        except GrantRefused as refused:
            if refused.reason in ("credentials", "code_mismatch"):
                self.throttle.failure(client_ip)
            if refused.reason in CHALLENGE_RESULTS:
                if ticket is None:  # a typed password (not SRP's ticket): worth a verifier for the next sign-in
                    self.seen(refused.user_id or user_id, username, password)
                return SignInOutcome(CHALLENGE_RESULTS[refused.reason], user_id=refused.user_id or user_id,
                                     username=username)
            return SignInOutcome(GRANT_RESULTS[refused.reason])
        except KeycloakUnavailable:
            return SignInOutcome(Result.UNAVAILABLE)
        return SignInOutcome(Result.SIGNED_IN, tokens, path)
