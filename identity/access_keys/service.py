"""The one owner of `access_keys`: issue, list, disable, delete, and look a key up for a signed request."""

from __future__ import annotations

import base64
import json
import secrets
import string
from dataclasses import dataclass, field

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.exc import IntegrityError

from identity.access_keys.models import AccessKey
from identity.legacy.models import utcnow

TABLE = AccessKey.__table__
_NONCE = 12
_ID_ALPHABET = string.ascii_uppercase + "234567"


class KeyNameTaken(Exception):
    pass


@dataclass(frozen=True)
class Key:
    access_key_id: str
    name: str
    operations: frozenset[str]
    enabled: bool
    secret: str | None = field(default=None, repr=False)   # only when looked up to verify a signature

    def allows(self, operation: str) -> bool:
        return self.enabled and operation in self.operations


class AccessKeys:
    def __init__(self, engine: sa.Engine, service_secret: bytes):
        if not service_secret:
            raise ValueError("access keys need a service secret")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"identity access key").derive(service_secret)
        self.engine, self._aead = engine, AESGCM(key)

    def __repr__(self) -> str:
        return "AccessKeys(<secret>)"

    def create(self, name: str, operations: list[str]) -> tuple[str, str]:
        """(access key id, secret): the secret is shown this once."""
        key_id = "AKIA" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))
        secret = base64.b64encode(secrets.token_bytes(30)).decode()   # 40 characters, as AWS's
        nonce = secrets.token_bytes(_NONCE)
        sealed = base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, secret.encode(), key_id.encode())).decode()
        try:
            with self.engine.begin() as conn:
                conn.execute(TABLE.insert().values(access_key_id=key_id, name=name, sealed_secret=sealed,
                                                   operations=json.dumps(sorted(set(operations))), enabled=True,
                                                   created_at=utcnow()))
        except IntegrityError:
            raise KeyNameTaken(name) from None
        return key_id, secret

    def list(self) -> list[Key]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(TABLE).order_by(TABLE.c.name)).mappings().all()
        return [self._key(row) for row in rows]

    def disable(self, name: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(TABLE.update().where(TABLE.c.name == name).values(enabled=False)).rowcount == 1

    def delete(self, name: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(TABLE.delete().where(TABLE.c.name == name)).rowcount == 1

    def lookup(self, access_key_id: str) -> Key | None:
        """The key with its secret, to verify a signature; None for an unknown id."""
        if not isinstance(access_key_id, str) or len(access_key_id) > 20:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(TABLE).where(TABLE.c.access_key_id == access_key_id)).mappings().first()
        if row is None:
            return None
        raw = base64.urlsafe_b64decode(row["sealed_secret"].encode())
        try:
            secret = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], access_key_id.encode()).decode()
        except InvalidTag:   # sealed under another service secret: no usable key
            return None
        return self._key(row, secret)

    @staticmethod
    def _key(row, secret: str | None = None) -> Key:
        return Key(row["access_key_id"], row["name"], frozenset(json.loads(row["operations"])), bool(row["enabled"]),
                   secret)
