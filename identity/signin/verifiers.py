"""The one owner of `srp_verifiers` and `srp_spent_challenges` (every challenge answered, SRP's and others').

A verifier is made whenever a password passes through the service (a sign-in with the password,
a first-login migration, a sign-up, a reset, a change), for the user pool it is configured with
and the Keycloak password credential in force: a verifier made for another pool, or before the
user set a password elsewhere (Keycloak's pages, the console), is stale and not used.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta, timezone
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from identity import srp
from identity.db import transaction
from identity.legacy.models import utcnow
from identity.signin.models import SpentChallenge, SrpVerifier

VERIFIERS = SrpVerifier.__table__
SPENT = SpentChallenge.__table__
# A verifier the provider pushed is made as Keycloak validates the password, just before it stores the
# credential; two hosts' clocks and that moment fit in this. A password set but never stored (its
# transaction failed) leaves a verifier that matches no credential's time.
PUSH_SLACK = timedelta(seconds=60)
PURGE_BATCH = 100  # expired challenge ids removed per answer: bounded work, and the table stays small


class Verifiers:
    def __init__(self, engine: sa.Engine, user_pool_id: str, service_secret: bytes):
        self.engine = engine
        self.pool = srp.pool_name(user_pool_id)
        self._mac_key = hmac.new(service_secret, b"identity srp password mac", hashlib.sha256).digest()

    def _mac(self, keycloak_user_id: str, password: str) -> str:
        message = f"{self.pool}|{keycloak_user_id}|{password}".encode("utf-8", "surrogatepass")
        return hmac.new(self._mac_key, message, hashlib.sha256).hexdigest()

    def get(self, keycloak_user_id: str):
        """The user's verifier row for this pool, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(VERIFIERS).where(VERIFIERS.c.keycloak_user_id == keycloak_user_id)
                               ).mappings().first()
        return row if row is not None and row["pool"] == self.pool else None

    def remember(self, keycloak_user_id: str, username: str, password: str,
                 credential_id: Callable[[], str | None]) -> bool:
        """Keep a verifier of `password` for the user; True when one was written. `credential_id` names
        Keycloak's password credential now in force (asked only when something is written)."""
        row = self.get(keycloak_user_id)
        if row is not None and row["username"] == username and row["password_mac"] is not None and \
                hmac.compare_digest(row["password_mac"], self._mac(keycloak_user_id, password)):
            return False
        self._write(keycloak_user_id, username, password, credential_id())
        return True

    def pushed(self, keycloak_user_id: str, username: str, password: str) -> None:
        """Keycloak is about to store `password` (its provider tells the bridge as it validates a new
        password): the credential has no id yet, so the verifier is matched to it by time (`usable`)."""
        self._write(keycloak_user_id, username, password, None)

    def usable(self, row, credential: dict | None):
        """`row` when its verifier is of the password Keycloak holds now (`credential`: Keycloak's
        password credential, id and createdDate), else None."""
        if row is None or credential is None:
            return None
        if row["credential_id"] is not None:
            return row if row["credential_id"] == credential.get("id") else None
        created = datetime.fromtimestamp(int(credential.get("createdDate") or 0) / 1000, timezone.utc)
        made = row["updated_at"].replace(tzinfo=timezone.utc)
        return row if abs(made - created) <= PUSH_SLACK else None

    def _write(self, keycloak_user_id: str, username: str, password: str, credential_id: str | None) -> None:
        salt, verifier = srp.make_verifier(self.pool, keycloak_user_id, password)
        values = {"username": username, "pool": self.pool, "salt": salt, "verifier": verifier,
                  "password_mac": self._mac(keycloak_user_id, password), "credential_id": credential_id,
                  "updated_at": utcnow()}

        def write(conn: sa.Connection) -> None:
            updated = conn.execute(VERIFIERS.update().where(VERIFIERS.c.keycloak_user_id == keycloak_user_id)
                                   .values(**values)).rowcount
            if not updated:
                try:
                    with conn.begin_nested():
                        conn.execute(VERIFIERS.insert().values(keycloak_user_id=keycloak_user_id, **values))
                except IntegrityError:  # another process wrote it meanwhile, for the same password
                    pass
        transaction(self.engine, write)

    def forget(self, keycloak_user_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(VERIFIERS.delete().where(VERIFIERS.c.keycloak_user_id == keycloak_user_id))

    def is_spent(self, block_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(SPENT.c.block_id).where(SPENT.c.block_id == block_id)).first() is not None

    def spend(self, block_id: str, expires_at: datetime) -> bool:
        """Record a challenge as answered; False when it was already (a replay)."""
        now = utcnow()

        def spend(conn: sa.Connection) -> bool:
            expired = conn.execute(sa.select(SPENT.c.block_id).where(SPENT.c.expires_at < now)
                                   .limit(PURGE_BATCH)).scalars().all()
            if expired:
                conn.execute(SPENT.delete().where(SPENT.c.block_id.in_(expired)))
            try:
                with conn.begin_nested():
                    conn.execute(SPENT.insert().values(block_id=block_id,
                                                       expires_at=expires_at.replace(tzinfo=None)))
            except IntegrityError:
                return False
            return True
        return transaction(self.engine, spend)


class KeepVerifier:
    """Told of a password the service saw to be right (identity.signin.service.PasswordSeen): keeps the
    user's verifier of it, under the Keycloak password credential now in force."""

    def __init__(self, verifiers: Verifiers, keycloak):
        self.verifiers, self.keycloak = verifiers, keycloak

    def __call__(self, keycloak_user_id: str, username: str, password: str) -> None:
        self.verifiers.remember(keycloak_user_id, username, password,
                                lambda: (self.keycloak.password_credential(keycloak_user_id) or {}).get("id"))
