"""One-time codes (password reset, sign-up confirmation), stored hashed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from identity.db import db


class VerificationCode(db.Model):
    __tablename__ = "verification_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    purpose: Mapped[str] = mapped_column(String(16), nullable=False)      # reset | signup
    subject: Mapped[str] = mapped_column(String(64), nullable=False)      # Keycloak user id
    code_hash: Mapped[str] = mapped_column(String(64), nullable=False)    # HMAC-SHA256 under SECRET_KEY
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        # The latest code of a user for a purpose, and how many were sent in the last hour.
        Index("ix_verification_codes_purpose_subject_created_at", "purpose", "subject", "created_at"),
    )
