"""Sign-in throttling state shared by every service process."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from identity.db import db


class ClientFailure(db.Model):
    """Failed sign-ins per client address in the current window."""

    __tablename__ = "client_failures"

    client_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    window_started_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
