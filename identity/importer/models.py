"""The import's own ledger: one row per input line per run, written in the same
transaction as the users it describes, so a killed run resumes exactly where
it stopped and the report is an aggregate over this table.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from identity.db import db
from identity.legacy.models import utcnow


class ImportRun(db.Model):
    __tablename__ = "import_runs"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    arguments: Mapped[str] = mapped_column(Text, nullable=False)  # JSON: file names and options, no secret
    hashes_staged: Mapped[bool] = mapped_column(default=False, nullable=False)
    profiles_staged: Mapped[bool] = mapped_column(default=False, nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class ImportRecord(db.Model):
    __tablename__ = "import_records"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)    # profiles | hashes | deleted
    line_no: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kii_user_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)     # imported, updated, unchanged, failed, ...
    reason: Mapped[str | None] = mapped_column(String(48))               # failure or warning code
    flags: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    # The sign-in identifiers this line claimed (for collisions with later lines of the same run).
    username: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    phone_number: Mapped[str | None] = mapped_column(String(20))

    __table_args__ = (
        Index("ix_import_records_run_id_kii_user_id", "run_id", "kii_user_id"),
        Index("ix_import_records_run_id_source_outcome_reason", "run_id", "source", "outcome", "reason"),
        Index("ix_import_records_run_id_username", "run_id", "username"),
        Index("ix_import_records_run_id_email", "run_id", "email"),
        Index("ix_import_records_run_id_phone_number", "run_id", "phone_number"),
    )


class ImportUnchanged(db.Model):
    """The ledger's compact half: a profile line a set operation proved unchanged (unchanged.py), with its
    hash line's outcome. The same facts as an `import_records` row, without the identifiers the store
    already holds for this very line and so without their indexes: one row per line, written at the
    speed of the table's keys. The ledger reads both halves (ledger.py)."""

    __tablename__ = "import_unchanged"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    line_no: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kii_user_id: Mapped[str] = mapped_column(String(64), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(48))               # the line's warnings
    flags: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    hash_line_no: Mapped[int | None] = mapped_column(BigInteger)
    hash_outcome: Mapped[str | None] = mapped_column(String(16))        # unchanged | kept

    __table_args__ = (Index("ix_import_unchanged_run_id_kii_user_id", "run_id", "kii_user_id"),)


class ImportHash(db.Model):
    """The hash export, staged for the join with the profiles; emptied when the run ends."""

    __tablename__ = "import_hashes"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kii_user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    line_no: Mapped[int] = mapped_column(BigInteger, nullable=False)
    password_hash: Mapped[str | None] = mapped_column(Text)
    salt: Mapped[str | None] = mapped_column(String(255))
    problem: Mapped[str | None] = mapped_column(String(48))  # why this hash cannot be used
    fingerprint: Mapped[str | None] = mapped_column(String(64))


class ImportProfile(db.Model):
    """The profile export's readable lines, staged so that the lines a set operation can prove unchanged
    are recorded at once (unchanged.py); emptied when the run ends."""

    __tablename__ = "import_profiles"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    line_no: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kii_user_id: Mapped[str] = mapped_column(String(64), nullable=False)
    digest: Mapped[str] = mapped_column(String(40), nullable=False)        # plan.line_digest
    has_password: Mapped[bool | None] = mapped_column()
    # Another line of the export names the same userID: the planner decides, in file order.
    contested: Mapped[bool] = mapped_column(default=False, nullable=False)


class VerifiedLine(db.Model):
    """What `migration verify` expects of a user, as worked out from one profile line (expected.py, its
    owner): a later verify of the very same line (its digest) takes it from here instead of parsing and
    validating the line again. A pure function of the line's bytes and the settings it was read with,
    so it holds nothing the store or Keycloak could have changed; one row per userID, the latest line."""

    __tablename__ = "verified_lines"

    kii_user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    digest: Mapped[str] = mapped_column(String(40), nullable=False)   # expected.line_key
    keycloak_id: Mapped[str] = mapped_column(String(36), nullable=False)
    username: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    phone_number: Mapped[str | None] = mapped_column(String(20))
    base: Mapped[str | None] = mapped_column(String(40))
    phone: Mapped[str | None] = mapped_column(String(40))
    locale: Mapped[str | None] = mapped_column(String(40))
    name: Mapped[str | None] = mapped_column(String(40))
    custom: Mapped[str | None] = mapped_column(String(40))
    disabled: Mapped[bool | None] = mapped_column()
    has_password: Mapped[bool | None] = mapped_column()
