"""Access tokens as Cognito's verifier checks them, and the signing keys as Cognito publishes them. No Flask."""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Protocol

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from identity.cognito import errors
from identity.cognito.clients import AppClients
from identity.keycloak.errors import KeycloakUnavailable
from identity.keycloak.oidc import OIDC
from identity.metrics import JWKS_FETCHES

JWKS_TTL = 300
JWKS_REFETCH_SECONDS = 30  # the shortest time between two fetches of the signing keys


def token_kid(token: str) -> str | None:
    """The `kid` a compact JWS names in its header (read, not trusted: it only picks a key); None if malformed."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, TypeError, RecursionError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) and kid else None


class Sessions(Protocol):
    """Is the user's Keycloak session alive and signed in to the client (identity.keycloak.gateway)?"""

    def session_alive(self, user_id: str, session_id: str, client_id: str) -> bool: ...


class AccessTokens:
    def __init__(self, oidc: OIDC, clients: AppClients, sessions: Sessions):
        self.oidc, self.clients, self.sessions = oidc, clients, sessions
        self._jwks: tuple[float, KeySet] | None = None   # (fetched at, keys)
        self._jwks_tried: float | None = None             # the last fetch started, failed or not
        self._jwks_lock = threading.Lock()

    def _keyset(self, kid: str) -> KeySet:
        """Keycloak's signing keys, fetched when the copy is older than JWKS_TTL or lacks `kid`, but at
        most once per JWKS_REFETCH_SECONDS: tokens naming keys nobody has cannot make the service
        hammer Keycloak, and a key Keycloak rotates in is found within that interval."""
        with self._jwks_lock:
            now = time.monotonic()
            if self._jwks is not None:
                fetched, keys = self._jwks
                current = now - fetched <= JWKS_TTL and any(key.kid == kid for key in keys.keys)
                if current or (self._jwks_tried is not None and now - self._jwks_tried < JWKS_REFETCH_SECONDS):
                    return keys  # a stale copy still verifies while Keycloak cannot be asked again yet
            elif self._jwks_tried is not None and now - self._jwks_tried < JWKS_REFETCH_SECONDS:
                raise KeycloakUnavailable("signing keys not fetched yet")
            self._jwks_tried = now
            self._jwks = (now, KeySet.import_key_set(self.jwks()))
            return self._jwks[1]

    def jwks(self) -> dict:
        """Keycloak's signing keys as Cognito publishes them (RS256 signature keys only)."""
        JWKS_FETCHES.inc()
        keys = [k for k in self.oidc.certs().get("keys", []) if k.get("use", "sig") == "sig" and k.get("alg") == "RS256"]
        return {"keys": keys}

    def verify(self, token: str) -> dict:
        """Cognito's verifier: signature by kid, iss, exp, token_use; then the session must be alive.
        The claims; KeycloakUnavailable when Keycloak cannot be asked."""
        kid = token_kid(token)
        if kid is None:  # not a signed JWT naming its key: no key could verify it
            raise errors.NotAuthorizedError("Invalid Access Token")
        keys = self._keyset(kid)
        try:
            claims = jwt.decode(token, keys, algorithms=["RS256"]).claims
            jwt.JWTClaimsRegistry(iss={"essential": True, "value": self.oidc.issuer},
                                  exp={"essential": True}).validate(claims)
        except (JoseError, ValueError, TypeError):
            raise errors.NotAuthorizedError("Invalid Access Token") from None
        if claims.get("token_use") != "access" or claims.get("client_id") not in self.clients:
            raise errors.NotAuthorizedError("Invalid Access Token")
        session_id = claims.get("sid") or claims.get("origin_jti")
        if not isinstance(session_id, str) or not isinstance(claims.get("sub"), str):
            raise errors.NotAuthorizedError("Invalid Access Token")
        # Signed and unexpired is not enough: a global sign-out or a revoked refresh token ends the
        # session the token belongs to, and with it the token (Cognito's rule).
        if not self.sessions.session_alive(claims["sub"], session_id, claims["client_id"]):
            raise errors.AccessTokenRevokedError()
        return claims
