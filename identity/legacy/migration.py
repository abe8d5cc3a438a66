"""First-login migration: the one state machine both the JSON API and the Keycloak bridge use.

    pending --(right legacy password; Keycloak now holds it)--> migrated
    pending --(wrong password)--> pending, failed_attempts + 1 (locked out after the threshold)
    reset_required: no usable legacy hash, the user resets by email

A password no hash can take (hashes.usable_password) is a wrong password. A
disabled user is told so only after a right password; without a hash to
check (a user the import deleted) every password is a wrong one.

Exactly once, crash-safe: the legacy hash is checked without a lock (it is
the slow part); then the row is locked (``SELECT ... FOR UPDATE``, or SQLite's
write lock), re-read, Keycloak is given the password, and only then is the
row marked migrated and its hash deleted, in that transaction. Whatever step
a crash interrupts, the row still says pending with its hash, Keycloak holds
either nothing or the same password, and the next attempt with that password
does the same steps again. Concurrent first sign-ins of one user queue on the
row lock; all but the first find it migrated.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol


from identity import audit
from identity.legacy import hashes
from identity.legacy.credentials import LegacySettings
from identity.legacy.models import MigrationState, utcnow
from identity.legacy.store import LegacyStore

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    MIGRATED = "migrated"                  # the password moved to Keycloak just now
    ALREADY_MIGRATED = "already_migrated"  # Keycloak holds the password: sign in there
    WRONG_PASSWORD = "wrong_password"
    LOCKED = "locked"
    RESET_REQUIRED = "reset_required"
    DISABLED = "disabled"


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    # MIGRATED, when asked for: Keycloak's single-use proof that it has just stored the checked
    # password, for the token request that follows (no second password check there). A secret.
    ticket: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Lockout:
    threshold: int = 5          # failures before a lockout, as Cognito does
    base_seconds: int = 60      # first lockout; doubles with each further failure
    max_seconds: int = 900

    def until(self, failures: int, now: datetime) -> datetime | None:
        if failures < self.threshold:
            return None
        seconds = min(self.base_seconds * 2 ** (failures - self.threshold), self.max_seconds)
        return now + timedelta(seconds=seconds)


class FailPoint(Exception):
    """Raised at a named step when a test asks for a crash there."""


class KeycloakPasswords(Protocol):
    """What the migration asks of Keycloak (identity.keycloak.gateway.KeycloakGateway answers)."""

    def migrate_password(self, user_id: str, password: str, ticket_for: str | None) -> tuple[bool, str | None]:
        """(True, ticket or None): Keycloak holds the password now; (False, None): the user already
        had a Keycloak password (a reset at Keycloak's pages since the import), left as it is."""

    def password_set_at_keycloak(self, user_id: str) -> bool:
        """The user chose a password at Keycloak's own pages since the import."""


class LegacyMigration:
    def __init__(self, store: LegacyStore, legacy: LegacySettings, keycloak: KeycloakPasswords,
                 lockout: Lockout = Lockout(), failpoints: frozenset[str] = frozenset()):
        self.store = store
        self.engine = store.engine
        self.legacy = legacy
        self.keycloak = keycloak
        self.lockout = lockout
        self.failpoints = failpoints

    def _failpoint(self, name: str) -> None:
        if name in self.failpoints:
            raise FailPoint(name)

    def mark_migrated(self, kii_user_id: str, via: str, client: str | None = None) -> None:
        """Keycloak holds a password the user chose (a reset): the legacy hash goes for good."""
        now = utcnow()
        with self.engine.begin() as conn:
            audit.record(conn, "reset", now, kii_user_id=kii_user_id, path=via, client=client)
            self.store.mark_migrated(conn, kii_user_id, now)
        log.info("legacy password replaced", extra={"kii_user_id": kii_user_id, "path": via})

    def require_reset(self, kii_user_id: str, via: str, client: str | None = None) -> None:
        """An administrator reset the password of a user not migrated yet: the legacy hash goes for good,
        and only a reset by email signs them in again."""
        now = utcnow()
        with self.engine.begin() as conn:
            audit.record(conn, "reset_required", now, kii_user_id=kii_user_id, path=via, client=client)
            self.store.require_reset(conn, kii_user_id, now)
        log.info("legacy password ended", extra={"kii_user_id": kii_user_id, "path": via})

    def forget_user(self, keycloak_user_id: str, client: str | None = None) -> None:
        """The user deleted their account: nothing of theirs stays in the legacy store."""
        with self.engine.begin() as conn:
            kii_user_id = self.store.delete_for_keycloak_user(conn, keycloak_user_id)
            audit.record(conn, "deleted", utcnow(), kii_user_id=kii_user_id, keycloak_user_id=keycloak_user_id,
                         path="api", client=client)

    # --- the attempt ----------------------------------------------------------------

    def attempt(self, row, password: str, path: str = "api", client: str | None = None,
                ticket_for: str | None = None) -> Attempt:
        """The first-login step for `row` (read under the user's sign-in lock) and `password`."""
        attempt = self._attempt(row, password, path, client, ticket_for)
        if attempt.outcome in (Outcome.WRONG_PASSWORD, Outcome.RESET_REQUIRED) and row["keycloak_user_id"] \
                and self.keycloak.password_set_at_keycloak(row["keycloak_user_id"]):
            # The user reset their password at Keycloak's own pages since the import: the legacy hash
            # goes, and Keycloak alone judges this password.
            self.mark_migrated(row["kii_user_id"], via="keycloak", client=client)
            return Attempt(Outcome.ALREADY_MIGRATED)
        return attempt

    def _attempt(self, row, password: str, path: str, client: str | None, ticket_for: str | None) -> Attempt:
        now = utcnow()
        state = MigrationState(row["state"])
        if state == MigrationState.migrated:
            return Attempt(Outcome.ALREADY_MIGRATED)
        checkable = state == MigrationState.pending and bool(row["password_hash"])
        # A disabled (or deleted) user gets no migration-state answer: that would tell the account exists.
        if not checkable and not row["disabled"]:
            return Attempt(Outcome.RESET_REQUIRED)
        if row["locked_until"] and row["locked_until"] > now:
            return Attempt(Outcome.LOCKED)
        if not checkable or not hashes.usable_password(password):
            # Nothing to check the password against, or a password no hash can take: a wrong password,
            # counted as one, after the work a check costs.
            hashes.burn(self.legacy.context())
            return Attempt(self._record_failure(row["kii_user_id"], now, path, client))
        try:
            ok = self.legacy.verify(password, row["password_hash"], row["salt"])
        except hashes.LegacyHashError as exc:
            # The import checked every hash; one that still cannot be read is a reset case.
            log.error("legacy hash unverifiable", extra={"kii_user_id": row["kii_user_id"], "reason": exc.code})
            if row["disabled"]:
                return Attempt(self._record_failure(row["kii_user_id"], now, path, client))
            return Attempt(Outcome.RESET_REQUIRED)
        if not ok:
            return Attempt(self._record_failure(row["kii_user_id"], now, path, client))
        if row["disabled"]:
            return Attempt(Outcome.DISABLED)
        self._failpoint("after_hash_check")
        return self._migrate(row["kii_user_id"], password, path, client, ticket_for)

    def _record_failure(self, kii_user_id: str, now: datetime, path: str, client: str | None) -> Outcome:
        with self.engine.begin() as conn:
            failures = self.store.count_failure(conn, kii_user_id, now)
            until = self.lockout.until(failures, now)
            if until:
                self.store.lock_out(conn, kii_user_id, until)
                audit.record(conn, "locked_out", now, kii_user_id=kii_user_id, path=path, client=client,
                             detail={"failures": failures, "until": until.isoformat()})
        return Outcome.LOCKED if until else Outcome.WRONG_PASSWORD

    def _migrate(self, kii_user_id: str, password: str, path: str, client: str | None,
                 ticket_for: str | None) -> Attempt:
        with self.engine.begin() as conn:
            row = self.store.lock(conn, kii_user_id)
            if MigrationState(row["state"]) == MigrationState.migrated:
                return Attempt(Outcome.ALREADY_MIGRATED)
            moved, ticket = self.keycloak.migrate_password(row["keycloak_user_id"], password, ticket_for)
            self._failpoint("after_keycloak_set")
            now = utcnow()
            self.store.mark_migrated(conn, kii_user_id, now)
            audit.record(conn, "migrated" if moved else "reset", now, kii_user_id=kii_user_id,
                         keycloak_user_id=row["keycloak_user_id"], path=path if moved else "keycloak", client=client)
            self._failpoint("before_commit")
        if not moved:
            # The old password must not replace the one the user chose at Keycloak: the hash goes,
            # and Keycloak alone judges this sign-in.
            log.info("legacy hash dropped: the user set a Keycloak password", extra={"kii_user_id": kii_user_id})
            return Attempt(Outcome.ALREADY_MIGRATED)
        log.info("legacy password migrated", extra={"kii_user_id": kii_user_id})
        return Attempt(Outcome.MIGRATED, ticket)
