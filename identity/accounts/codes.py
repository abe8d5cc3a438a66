"""Issue and check one-time codes: hashed at rest, expiring, limited in attempts and in rate, single use."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from identity.accounts.models import VerificationCode
from identity.legacy.models import utcnow

CODES = VerificationCode.__table__


class CodeError(Exception):
    kind = "mismatch"   # mismatch | expired | too_many_attempts | rate_limited


class CodeMismatch(CodeError):
    kind = "mismatch"


class CodeExpired(CodeError):
    kind = "expired"


class TooManyAttempts(CodeError):
    kind = "too_many_attempts"


class RateLimited(CodeError):
    kind = "rate_limited"


@dataclass(frozen=True)
class CodePolicy:
    lifetime: timedelta
    max_attempts: int = 5
    per_hour: int = 5


class Codes:
    def __init__(self, engine: sa.Engine, secret: bytes, policies: dict[str, CodePolicy]):
        self.engine, self.secret, self.policies = engine, secret, policies

    def _hash(self, purpose: str, subject: str, code: str) -> str:
        return hmac.new(self.secret, f"{purpose}\0{subject}\0{code}".encode(), hashlib.sha256).hexdigest()

    def issue(self, purpose: str, subject: str) -> str:
        """A fresh 6-digit code (earlier unused ones of the same purpose stop counting)."""
        policy, now = self.policies[purpose], utcnow()
        with self.engine.begin() as conn:
            recent = conn.execute(sa.select(sa.func.count()).where(
                CODES.c.purpose == purpose, CODES.c.subject == subject,
                CODES.c.created_at > now - timedelta(hours=1))).scalar_one()
            if recent >= policy.per_hour:
                raise RateLimited()
            code = f"{secrets.randbelow(10**6):06d}"
            conn.execute(CODES.insert().values(purpose=purpose, subject=subject,
                                               code_hash=self._hash(purpose, subject, code), created_at=now,
                                               expires_at=now + policy.lifetime, attempts=0))
        return code

    def forget(self, purpose: str, subject: str) -> None:
        """Drop the code just issued when it could not be delivered."""
        with self.engine.begin() as conn:
            latest = conn.execute(sa.select(sa.func.max(CODES.c.id)).where(
                CODES.c.purpose == purpose, CODES.c.subject == subject)).scalar_one()
            if latest:
                conn.execute(CODES.delete().where(CODES.c.id == latest))

    def release(self, purpose: str, subject: str) -> None:
        """Make the latest code usable again (its use was refused further on, e.g. by the password policy)."""
        with self.engine.begin() as conn:
            latest = conn.execute(sa.select(sa.func.max(CODES.c.id)).where(
                CODES.c.purpose == purpose, CODES.c.subject == subject)).scalar_one()
            if latest:
                conn.execute(CODES.update().where(CODES.c.id == latest).values(used_at=None))

    def consume(self, purpose: str, subject: str, code: str) -> None:
        """Accept the latest code once, or raise CodeMismatch / CodeExpired / TooManyAttempts."""
        policy, now = self.policies[purpose], utcnow()
        error = None
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(CODES).where(CODES.c.purpose == purpose, CODES.c.subject == subject)
                               .order_by(CODES.c.id.desc()).limit(1).with_for_update()).mappings().first()
            if row is None or row["used_at"] is not None:
                error = CodeMismatch()
            elif row["attempts"] >= policy.max_attempts:
                error = TooManyAttempts()
            elif not hmac.compare_digest(row["code_hash"], self._hash(purpose, subject, str(code))):
                # Counted in this transaction, which commits: the error is raised after it.
                conn.execute(CODES.update().where(CODES.c.id == row["id"]).values(attempts=CODES.c.attempts + 1))
                error = CodeMismatch()
            elif row["expires_at"] <= now:
                error = CodeExpired()
            # Single use, even against a concurrent confirmation in another process.
            elif not conn.execute(CODES.update().where(CODES.c.id == row["id"], CODES.c.used_at.is_(None))
                                  .values(used_at=now)).rowcount:
                error = CodeMismatch()
        if error is not None:
            raise error
