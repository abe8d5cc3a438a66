"""The table of access keys (owned by identity.access_keys.service)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from identity.db import db
from identity.legacy.models import utcnow


class AccessKey(db.Model):
    __tablename__ = "access_keys"

    access_key_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    sealed_secret: Mapped[str] = mapped_column(String(255), nullable=False)   # AES-GCM, bound to the key id
    operations: Mapped[str] = mapped_column(Text, nullable=False)             # JSON list of operation names
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)

    def __repr__(self) -> str:  # never the secret
        return f"<AccessKey {self.access_key_id} {self.name}>"
