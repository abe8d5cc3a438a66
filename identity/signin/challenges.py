"""The `Session` of a sign-in challenge (NEW_PASSWORD_REQUIRED, SOFTWARE_TOKEN_MFA, MFA_SETUP's steps):
opaque to the app, sealed by the service.

It carries whose sign-in it continues (the Keycloak user), for which app client, what it is for,
until when, a random id the service records once it is answered, so it answers once, and in MFA
setup the authenticator-app secret waiting for its first code. Sealed
with AES-GCM under a key derived from the service secret (its own label, apart from SRP's), so any
process of the service can take the answer and nobody else can make or alter one.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"
_NONCE = 12
_LABEL = b"identity challenge session"


class InvalidSession(Exception):
    """Not a session of this service for this challenge and client, or expired (one fixed message)."""


@dataclass(frozen=True)
class OpenedSession:
    session_id: str
    expires_at: datetime
    user_id: str
    username: str
    client_id: str
    secret: str | None = field(default=None, repr=False)


class ChallengeSessions:
    def __init__(self, service_secret: bytes, ttl: timedelta = timedelta(minutes=3)):
        if not service_secret:
            raise ValueError("challenge sessions need a service secret")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_LABEL).derive(service_secret)
        self._aead, self.ttl = AESGCM(key), ttl

    def __repr__(self) -> str:
        return "ChallengeSessions(<secret>)"

    def seal(self, challenge: str, user_id: str, username: str, client_id: str, now: datetime,
             secret: str | None = None) -> str:
        state = {"i": secrets.token_hex(16), "e": int((now + self.ttl).timestamp()), "u": user_id, "n": username,
                 "c": client_id}
        if secret is not None:
            state["s"] = secret
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._aead.encrypt(nonce, json.dumps(state).encode(), _VERSION + _bound(challenge))
        return base64.urlsafe_b64encode(_VERSION + nonce + sealed).decode("ascii")

    def open(self, text: str, challenge: str, client_id: str | None, now: datetime) -> OpenedSession:
        """The session, if it is one of this service's for `challenge`, unexpired, and of `client_id`
        (None: of whichever client it names, for the operations that name none, such as
        AssociateSoftwareToken; the client is checked where the sign-in ends)."""
        try:
            raw = base64.urlsafe_b64decode(text.encode("ascii"))
            if raw[:1] != _VERSION or len(raw) < 1 + _NONCE:
                raise InvalidSession()
            plain = self._aead.decrypt(raw[1:1 + _NONCE], raw[1 + _NONCE:], _VERSION + _bound(challenge))
            state = json.loads(plain)
            opened = OpenedSession(state["i"], datetime.fromtimestamp(state["e"], timezone.utc), state["u"],
                                   state["n"], state["c"], state.get("s"))
        except (InvalidTag, ValueError, KeyError, TypeError, UnicodeError, binascii.Error):
            raise InvalidSession() from None
        if now >= opened.expires_at or (client_id is not None and opened.client_id != client_id):
            raise InvalidSession()
        return opened


def _bound(challenge: str) -> bytes:
    # Associated data: a session answers only the challenge it was issued for.
    return json.dumps([challenge]).encode()
