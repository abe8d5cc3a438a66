"""The legacy store: one row per imported Kii user, until and after migration.

Every look-up the sign-in path makes has its index here (username, email,
phone, Keycloak id); ``tests/test_migrations.py`` fails when these and the
Alembic migrations disagree.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone

from sqlalchemy import BigInteger, Boolean, DateTime, Enum, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from identity.db import db


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class MigrationState(str, enum.Enum):
    pending = "pending"                # legacy hash waiting for the first sign-in
    migrated = "migrated"              # Keycloak holds the password; no legacy hash
    reset_required = "reset_required"  # no usable legacy hash: reset by email


class LegacyUser(db.Model):
    __tablename__ = "legacy_users"

    kii_user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    keycloak_user_id: Mapped[str | None] = mapped_column(String(36), unique=True, index=True)
    # Sign-in identifiers, normalised as looked up: loginName lower-cased (Keycloak
    # usernames are), email lower-cased, phone in E.164.
    username: Mapped[str | None] = mapped_column(String(255), unique=True, index=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True, index=True)
    phone_number: Mapped[str | None] = mapped_column(String(20), unique=True, index=True)

    password_hash: Mapped[str | None] = mapped_column(Text)
    salt: Mapped[str | None] = mapped_column(String(255))
    # HMAC of the hash as exported (keyed with IDENTITY_SECRET_KEY): tells a second delivery's
    # hash from the first without keeping the weak digest in the clear after layering.
    hash_fingerprint: Mapped[str | None] = mapped_column(String(64))
    # True once `identity legacy layer` has layered the hash with argon2id.
    hash_layered: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)

    state: Mapped[MigrationState] = mapped_column(
        Enum(MigrationState, name="migration_state", native_enum=False, length=16,
             validate_strings=True),
        default=MigrationState.pending, nullable=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    kii_modified: Mapped[int | None] = mapped_column(BigInteger)
    # The profile line the import last wrote this row from (a digest of its bytes), with that line's
    # flags and warnings: a later delivery's identical line is unchanged without being parsed again.
    import_digest: Mapped[str | None] = mapped_column(String(40))
    import_flags: Mapped[int | None] = mapped_column(Integer)
    import_reason: Mapped[str | None] = mapped_column(String(48))

    failed_attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_failed_at: Mapped[datetime | None] = mapped_column(DateTime)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)

    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow, nullable=False)
    state_changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    migrated_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        # `identity migration stats` counts by (state, disabled) from this index alone.
        Index("ix_legacy_users_state_disabled", "state", "disabled"),
    )

    def __repr__(self) -> str:  # never the hash
        return f"<LegacyUser {self.kii_user_id} {self.state.value}>"
