"""What an SRP sign-in needs kept: each user's verifier, and the challenges already answered."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from identity.db import db
from identity.legacy.models import utcnow


class SrpVerifier(db.Model):
    """A user's SRP verifier (a secret like a password hash), made when the password last passed
    through the service, for the user pool and the Keycloak password credential it was made under."""

    __tablename__ = "srp_verifiers"

    keycloak_user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(255), nullable=False)   # Keycloak's, for the token request
    pool: Mapped[str] = mapped_column(String(64), nullable=False)
    salt: Mapped[str] = mapped_column(String(64), nullable=False)
    verifier: Mapped[str] = mapped_column(Text, nullable=False)
    # HMAC (under the service secret) of the password the verifier is of: a sign-in with that password
    # learns in microseconds that the verifier is current, where making one again costs a modexp.
    password_mac: Mapped[str | None] = mapped_column(String(64))
    # The Keycloak password credential the verifier matches: another one (a password set at Keycloak's
    # pages or in the console) makes the verifier stale.
    credential_id: Mapped[str | None] = mapped_column(String(36))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow, nullable=False)

    def __repr__(self) -> str:  # never the verifier
        return f"<SrpVerifier {self.keycloak_user_id}>"


class SpentChallenge(db.Model):
    """A PASSWORD_VERIFIER challenge (its SECRET_BLOCK's id) already answered: it answers once."""

    __tablename__ = "srp_spent_challenges"

    block_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)


class PendingSoftwareToken(db.Model):
    """An authenticator-app secret a signed-in user asked for (AssociateSoftwareToken) and has not
    confirmed with a code yet (VerifySoftwareToken). Sealed (AES-GCM under the service secret, bound
    to the user): the table never holds a usable secret. Keycloak holds the confirmed one."""

    __tablename__ = "pending_software_tokens"

    keycloak_user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    sealed_secret: Mapped[str] = mapped_column(String(255), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)

    def __repr__(self) -> str:  # never the secret
        return f"<PendingSoftwareToken {self.keycloak_user_id}>"
