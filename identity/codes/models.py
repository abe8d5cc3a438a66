"""One-time codes (password reset, sign-up confirmation, address verification), stored hashed, and the
count of wrong entries per subject across its codes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from identity.db import db


class VerificationCode(db.Model):
    __tablename__ = "verification_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    purpose: Mapped[str] = mapped_column(String(16), nullable=False)      # reset | signup | attribute
    # Keycloak user id, or "name:" and a keyed hash of a name nobody receives codes at (never sent).
    subject: Mapped[str] = mapped_column(String(64), nullable=False)
    # HMAC-SHA256 under SECRET_KEY of the code with its purpose, subject and the address it was sent to.
    code_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Superseded by a later issue (or a refused one), or not delivered: never current again.
    voided_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        # The latest code of a user for a purpose, and how many were sent in the last hour.
        Index("ix_verification_codes_purpose_subject_created_at", "purpose", "subject", "created_at"),
        # Old codes, removed in batches.
        Index("ix_verification_codes_expires_at", "expires_at"),
    )


class CodeFailure(db.Model):
    """Wrong codes entered for one subject, all purposes together, in the current window."""

    __tablename__ = "code_failures"

    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    window_started_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)

    __table_args__ = (
        # Windows that are over, removed in batches.
        Index("ix_code_failures_window_started_at", "window_started_at"),
    )
