"""SECRET_BLOCK: the server's half of an SRP exchange, carried by the client to the next call.

RespondToAuthChallenge may reach another process than InitiateAuth did, so the state travels in
the block itself: b and the client's A (A comes only with InitiateAuth and u needs it), sealed
with AES-GCM under a key derived from the service secret. The block is bound to one user and one
app client, expires, and carries a random id the caller records as used, so a block answers once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from identity.srp.errors import ExpiredSecretBlock, InvalidSecretBlock, SecretBlockMismatch
from identity.srp.protocol import B_SECRET_BYTES, N_BYTES, b64decode_strict

_VERSION = b"\x01"  # also the associated data: a later layout gets its own byte
_NONCE = 12
_ID = 16
_STATE = struct.Struct(">%dsq%ds%ds" % (_ID, B_SECRET_BYTES, N_BYTES))  # id, expiry, b, A
_KEY_LABEL = b"identity srp secret block"


@dataclass(frozen=True)
class SealedBlock:
    text: str = field(repr=False)  # SECRET_BLOCK, standard base64
    block_id: str
    expires_at: datetime


@dataclass(frozen=True)
class OpenedBlock:
    block_id: str  # record as used (until expires_at) before answering: a replay presents it again
    expires_at: datetime
    b: int = field(repr=False)
    srp_a: int = field(repr=False)


def _binding(user_id_for_srp: str, client_id: str) -> bytes:
    return hashlib.sha256(f"{len(user_id_for_srp)}:{user_id_for_srp}|{client_id}".encode("utf-8")).digest()


class SecretBlocks:
    """Seals and opens SECRET_BLOCKs under the service secret."""

    def __init__(self, service_secret: str | bytes):
        raw = service_secret.encode("utf-8") if isinstance(service_secret, str) else service_secret
        if not raw:
            raise ValueError("the secret block needs a service secret")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_LABEL).derive(raw)
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBlocks(<secret>)"

    def seal(self, b: int, srp_a: int, user_id_for_srp: str, client_id: str,
             now: datetime, ttl: timedelta) -> SealedBlock:
        block_id = secrets.token_bytes(_ID)
        expires = int((now + ttl).timestamp())
        plain = _STATE.pack(block_id, expires, b.to_bytes(B_SECRET_BYTES, "big"),
                            srp_a.to_bytes(N_BYTES, "big")) + _binding(user_id_for_srp, client_id)
        nonce = secrets.token_bytes(_NONCE)
        sealed = _VERSION + nonce + self._aead.encrypt(nonce, plain, _VERSION)
        return SealedBlock(base64.b64encode(sealed).decode("ascii"), block_id.hex(),
                           datetime.fromtimestamp(expires, timezone.utc))

    def open(self, text: str, user_id_for_srp: str, client_id: str, now: datetime) -> OpenedBlock:
        """Checked in this order, each with its own error: sealed here, issued to them, still fresh."""
        sealed = b64decode_strict(text, InvalidSecretBlock) if isinstance(text, str) else b""
        if sealed[:1] != _VERSION or len(sealed) < 1 + _NONCE:
            raise InvalidSecretBlock("SECRET_BLOCK was not issued by this service")
        try:
            plain = self._aead.decrypt(sealed[1:1 + _NONCE], sealed[1 + _NONCE:], _VERSION)
        except InvalidTag:
            raise InvalidSecretBlock("SECRET_BLOCK was not issued by this service") from None
        block_id, expires, b, srp_a = _STATE.unpack_from(plain)
        if not hmac.compare_digest(plain[_STATE.size:], _binding(user_id_for_srp, client_id)):
            raise SecretBlockMismatch("SECRET_BLOCK was issued to another user or client")
        expires_at = datetime.fromtimestamp(expires, timezone.utc)
        if now >= expires_at:
            raise ExpiredSecretBlock("SECRET_BLOCK has expired")
        return OpenedBlock(block_id.hex(), expires_at, int.from_bytes(b, "big"), int.from_bytes(srp_a, "big"))

