"""Authenticator-app secrets: how one is made and shown, and the one owner of `pending_software_tokens`.

The secret is what Keycloak's own "Configure OTP" page makes: 20 letters and digits, whose bytes
are the TOTP key (Keycloak's OTP credential stores it as text). The app is shown the base32 of
those bytes, as Cognito's SecretCode is, so the login page and the service ask for the same codes.
"""

from __future__ import annotations

import base64
import secrets
import string
from datetime import datetime, timedelta

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.exc import IntegrityError

from identity.db import transaction
from identity.legacy.models import utcnow
from identity.signin.models import PendingSoftwareToken

PENDING = PendingSoftwareToken.__table__
_ALPHABET = string.ascii_letters + string.digits
_NONCE = 12


def new_secret() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(20))


def secret_code(secret: str) -> str:
    """What the app is given to enter (Cognito's SecretCode): the key's bytes in base32."""
    return base64.b32encode(secret.encode("ascii")).decode("ascii").rstrip("=")


class PendingSecrets:
    """The secret a signed-in user was given by AssociateSoftwareToken, until VerifySoftwareToken
    confirms it (then Keycloak holds it) or it expires. One per user: a new one replaces it."""

    def __init__(self, engine: sa.Engine, service_secret: bytes, ttl: timedelta = timedelta(minutes=15)):
        if not service_secret:
            raise ValueError("pending software tokens need a service secret")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"identity pending software token").derive(service_secret)
        self.engine, self._aead, self.ttl = engine, AESGCM(key), ttl

    def __repr__(self) -> str:
        return "PendingSecrets(<secret>)"

    def hold(self, keycloak_user_id: str, secret: str) -> None:
        nonce = secrets.token_bytes(_NONCE)
        sealed = base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, secret.encode("ascii"),
                                                                     keycloak_user_id.encode())).decode()
        values = {"sealed_secret": sealed, "expires_at": utcnow() + self.ttl}

        def hold(conn: sa.Connection) -> None:
            conn.execute(PENDING.delete().where(PENDING.c.expires_at < utcnow()))  # never confirmed
            if not conn.execute(PENDING.update().where(PENDING.c.keycloak_user_id == keycloak_user_id)
                                .values(**values)).rowcount:
                try:
                    with conn.begin_nested():
                        conn.execute(PENDING.insert().values(keycloak_user_id=keycloak_user_id, **values))
                except IntegrityError:  # the same user asked twice at once: the other one stands
                    pass
        transaction(self.engine, hold)

    def get(self, keycloak_user_id: str, now: datetime | None = None) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(PENDING).where(PENDING.c.keycloak_user_id == keycloak_user_id)
                               ).mappings().first()
        if row is None or row["expires_at"] <= (now or utcnow()):
            return None
        raw = base64.urlsafe_b64decode(row["sealed_secret"].encode())
        try:
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], keycloak_user_id.encode()).decode("ascii")
        except InvalidTag:  # sealed under another service secret: as good as none
            return None

    def forget(self, keycloak_user_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(PENDING.delete().where(PENDING.c.keycloak_user_id == keycloak_user_id))
