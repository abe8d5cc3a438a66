"""Issue and check one-time codes: hashed at rest, bound to the address they were sent to, expiring, single
use, limited in attempts per code, in codes per hour, and in wrong entries per subject across all its codes.

A subject is a Keycloak user id, or a keyed stand-in for a name that nobody can receive codes at: such names
go through the same steps (codes issued and counted, never sent), so limits and answers do not tell them apart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from identity.codes.models import CodeFailure, VerificationCode
from identity.legacy.models import utcnow

CODES = VerificationCode.__table__
FAILURES = CodeFailure.__table__
PURGE_BATCH = 100  # old rows removed per issued code: bounded work, and the tables stay small


class CodeError(Exception):
    kind = "mismatch"   # mismatch | expired | too_many_attempts | rate_limited | locked


class CodeMismatch(CodeError):
    kind = "mismatch"


class CodeExpired(CodeError):
    kind = "expired"


class TooManyAttempts(CodeError):
    kind = "too_many_attempts"


class RateLimited(CodeError):
    kind = "rate_limited"


class Locked(CodeError):
    """Too many wrong entries for this subject within the window, whatever the code."""
    kind = "locked"


@dataclass(frozen=True)
class CodePolicy:
    lifetime: timedelta
    max_attempts: int = 5
    per_hour: int = 5


@dataclass(frozen=True)
class Issued:
    id: int
    code: str = ""

    def __repr__(self) -> str:  # never the code
        return f"<Issued {self.id}>"


class Codes:
    def __init__(self, engine: sa.Engine, secret: bytes, policies: dict[str, CodePolicy],
                 failure_limit: int = 10, failure_window_seconds: int = 86400):
        self.engine, self.secret, self.policies = engine, secret, policies
        self.failure_limit, self.failure_window = failure_limit, timedelta(seconds=failure_window_seconds)

    def digest(self, *parts: str) -> str:
        """HMAC-SHA256 (hex) under the service secret of the parts, unambiguously joined."""
        return hmac.new(self.secret, json.dumps(parts).encode(), hashlib.sha256).hexdigest()

    def _hash(self, purpose: str, subject: str, destination: str | None, code: str) -> str:
        # The address is part of what the code proves: checked against another address, it does not match.
        return self.digest("code", purpose, subject, destination or "", code)

    def issue(self, purpose: str, subject: str, destination: str | None) -> Issued:
        """A fresh 6-digit code for `destination`, the address it will be sent to. Every earlier code of the
        subject and purpose stops counting, also when this one is refused (RateLimited)."""
        policy, now = self.policies[purpose], utcnow()
        code = f"{secrets.randbelow(10**6):06d}"
        with self.engine.begin() as conn:
            self._purge(conn, now)
            # Withdrawn by id (row locks only): a range lock here could deadlock with a concurrent issue.
            current = conn.execute(sa.select(CODES.c.id).where(
                CODES.c.purpose == purpose, CODES.c.subject == subject, CODES.c.voided_at.is_(None))).scalars().all()
            if current:
                conn.execute(CODES.update().where(CODES.c.id.in_(current)).values(voided_at=now))
            recent = conn.execute(sa.select(sa.func.count()).where(
                CODES.c.purpose == purpose, CODES.c.subject == subject,
                CODES.c.created_at > now - timedelta(hours=1))).scalar_one()
            if recent >= policy.per_hour:
                issued = None  # the transaction still commits: the earlier code stays withdrawn
            else:
                issued = Issued(conn.execute(CODES.insert().values(
                    purpose=purpose, subject=subject, code_hash=self._hash(purpose, subject, destination, code),
                    created_at=now, expires_at=now + policy.lifetime, attempts=0)).inserted_primary_key[0], code)
        if issued is None:
            raise RateLimited()
        return issued

    def void(self, code_id: int) -> None:
        """Withdraw a code (it could not be delivered). Earlier codes stay withdrawn: none becomes current."""
        with self.engine.begin() as conn:
            conn.execute(CODES.update().where(CODES.c.id == code_id, CODES.c.voided_at.is_(None))
                         .values(voided_at=utcnow()))

    def release(self, code_id: int) -> None:
        """Make a consumed code usable again (its use was refused further on, e.g. by the password policy);
        a withdrawn one stays withdrawn."""
        with self.engine.begin() as conn:
            conn.execute(CODES.update().where(CODES.c.id == code_id, CODES.c.voided_at.is_(None))
                         .values(used_at=None))

    def consume(self, purpose: str, subject: str, code: str, destination: str | None) -> int:
        """Accept the current code once, if it was sent to `destination`: its id; or raise Locked /
        CodeMismatch / CodeExpired / TooManyAttempts."""
        policy, now = self.policies[purpose], utcnow()
        self._open_failure_window(subject, now)
        error = row = None
        with self.engine.begin() as conn:
            # The subject's failure count, locked first: concurrent guesses are counted one after another.
            counted = conn.execute(sa.select(FAILURES).where(FAILURES.c.subject == subject)
                                   .with_for_update()).mappings().first()
            in_window = counted is not None and counted["window_started_at"] > now - self.failure_window
            failures = counted["failures"] if in_window else 0
            if failures >= self.failure_limit:
                error = Locked()
            else:
                latest = conn.execute(sa.select(sa.func.max(CODES.c.id)).where(
                    CODES.c.purpose == purpose, CODES.c.subject == subject)).scalar_one()
                # Locked by id (a row lock): a range lock would make a concurrent issue deadlock with this.
                row = latest and conn.execute(sa.select(CODES).where(CODES.c.id == latest)
                                              .with_for_update()).mappings().first()
                if not row or row["used_at"] is not None or row["voided_at"] is not None:
                    error = CodeMismatch()
                elif row["attempts"] >= policy.max_attempts:
                    error = TooManyAttempts()
                elif not hmac.compare_digest(row["code_hash"], self._hash(purpose, subject, destination, str(code))):
                    conn.execute(CODES.update().where(CODES.c.id == row["id"])
                                 .values(attempts=CODES.c.attempts + 1))
                    error = CodeMismatch()
                elif row["expires_at"] <= now:
                    error = CodeExpired()
                # Single use, even against a concurrent confirmation in another process.
                elif not conn.execute(CODES.update().where(CODES.c.id == row["id"], CODES.c.used_at.is_(None))
                                      .values(used_at=now)).rowcount:
                    error = CodeMismatch()
            if isinstance(error, CodeMismatch):
                # Counted in this transaction, which commits: the error is raised after it.
                values = {"failures": failures + 1,
                          "window_started_at": counted["window_started_at"] if failures else now}
                if counted is None:  # removed since it was made (a window that short): made again
                    conn.execute(FAILURES.insert().values(subject=subject, **values))
                else:
                    conn.execute(FAILURES.update().where(FAILURES.c.subject == subject).values(**values))
        if error is not None:
            raise error
        return row["id"]

    def _open_failure_window(self, subject: str, now) -> None:
        """The subject's failure row exists, and a window that is over starts afresh. Made beforehand,
        in transactions of their own: locking a row that does not exist yet locks a range (MariaDB),
        and two first guesses would deadlock inserting into it."""
        with self.engine.connect() as conn:
            started = conn.execute(sa.select(FAILURES.c.window_started_at)
                                   .where(FAILURES.c.subject == subject)).scalar()
        if started is None:
            try:
                with self.engine.begin() as conn:
                    conn.execute(FAILURES.insert().values(subject=subject, failures=0, window_started_at=now))
            except IntegrityError:
                pass  # made by a concurrent request
        elif started <= now - self.failure_window:
            with self.engine.begin() as conn:
                conn.execute(FAILURES.update().where(
                    FAILURES.c.subject == subject, FAILURES.c.window_started_at <= now - self.failure_window)
                    .values(failures=0, window_started_at=now))

    def _purge(self, conn, now) -> None:
        """Remove a batch of rows no longer of use: codes expired for over an hour (no longer counted for
        the hourly limit, and never current again) and failure counts whose window is over."""
        old = conn.execute(sa.select(CODES.c.id).where(CODES.c.expires_at < now - timedelta(hours=1))
                           .limit(PURGE_BATCH)).scalars().all()
        if old:
            conn.execute(CODES.delete().where(CODES.c.id.in_(old)))
        done = conn.execute(sa.select(FAILURES.c.subject).where(
            FAILURES.c.window_started_at < now - self.failure_window).limit(PURGE_BATCH)).scalars().all()
        if done:
            conn.execute(FAILURES.delete().where(FAILURES.c.subject.in_(done),
                                                 FAILURES.c.window_started_at < now - self.failure_window))
