"""The audit trail: one row per migration event, never a secret.

Events: imported, migrated (path api or bridge), reset, locked_out, deleted;
mfa_app_set and mfa_app_removed (a user's authenticator app, through the API).
Rows are written in the same transaction as the change they describe, or, for a
change Keycloak holds, once Keycloak confirmed it, so the trail never claims
what did not happen. `identity audit` queries it.
"""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from identity.db import db


class AuditEvent(db.Model):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    event: Mapped[str] = mapped_column(String(24), nullable=False)
    kii_user_id: Mapped[str | None] = mapped_column(String(64))
    keycloak_user_id: Mapped[str | None] = mapped_column(String(36))
    path: Mapped[str | None] = mapped_column(String(16))
    client: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)   # JSON, never a password, hash, code or token

    __table_args__ = (
        Index("ix_audit_events_kii_user_id_at", "kii_user_id", "at"),
        Index("ix_audit_events_at", "at"),
    )


TABLE = AuditEvent.__table__


def row(event: str, at: datetime, kii_user_id=None, keycloak_user_id=None, path=None, client=None,
        detail: dict | None = None) -> dict:
    return {"event": event, "at": at, "kii_user_id": kii_user_id, "keycloak_user_id": keycloak_user_id,
            "path": path, "client": (client or None) and str(client)[:64],
            "detail": json.dumps(detail, sort_keys=True) if detail else None}


def record(conn, event: str, at: datetime, **fields) -> None:
    """Insert within the caller's transaction (conn)."""
    conn.execute(TABLE.insert().values(**row(event, at, **fields)))


def record_now(engine: sa.Engine, event: str, at: datetime, **fields) -> None:
    """Insert in a transaction of its own: a change Keycloak has already made."""
    with engine.begin() as conn:
        record(conn, event, at, **fields)


def query(engine: sa.Engine, user: str | None = None, since: datetime | None = None,
          until: datetime | None = None, limit: int = 1000) -> list[dict]:
    statement = sa.select(TABLE).order_by(TABLE.c.at, TABLE.c.id).limit(limit)
    if user:
        statement = statement.where(sa.or_(TABLE.c.kii_user_id == user, TABLE.c.keycloak_user_id == user))
    if since:
        statement = statement.where(TABLE.c.at >= since)
    if until:
        statement = statement.where(TABLE.c.at < until)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(statement).mappings()]
