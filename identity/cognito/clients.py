"""App clients and how a caller proves it is one: the one place for the JSON API and the hosted UI.

A confidential client (declared in IDENTITY_APP_CLIENT_SECRETS) proves its secret on every call:
SECRET_HASH or ClientSecret on the JSON API, as Cognito checks them; client_secret in the form or
HTTP Basic (RFC 6749 2.3.1) on /oauth2/*. The service never fills a secret in for a caller: it
passes a secret to Keycloak only once the caller has proved it. No Flask here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterator, Mapping
from urllib.parse import unquote_plus

from identity.cognito import errors


def secret_hash(client_secret: str, username: str, client_id: str) -> str:
    """Cognito's SECRET_HASH: Base64(HMAC-SHA256(secret, username + client id))."""
    digest = hmac.new(client_secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _same(given: str, expected: str) -> bool:
    # Bytes: compare_digest takes only ASCII str, and a caller's text may be anything.
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


class OAuthClientError(Exception):
    """A refusal of /oauth2/*'s client authentication, in RFC 6749 5.2's terms."""

    def __init__(self, error: str, status: int, description: str):
        super().__init__(description)
        self.error, self.status, self.description = error, status, description


class AppClients(Mapping):
    """The app clients: client id -> secret (None for the public app client).

    A mapping so code that only needs to know a client (or, once the caller is authenticated, its
    secret for Keycloak) reads it as one; proving a secret goes through the methods below only.
    """

    def __init__(self, public: list[str], confidential: Mapping[str, str]):
        for client_id, secret in confidential.items():
            if not isinstance(secret, str) or not secret:
                raise ValueError(f"IDENTITY_APP_CLIENT_SECRETS: client {client_id} needs a non-empty secret")
        self._secrets: dict[str, str | None] = {**{c: None for c in public}, **dict(confidential)}

    def __getitem__(self, client_id: str) -> str | None:
        return self._secrets[client_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._secrets)

    def __len__(self) -> int:
        return len(self._secrets)

    def __repr__(self) -> str:  # never the secrets
        return f"AppClients({sorted(self._secrets)})"

    # --- the JSON API ---------------------------------------------------------------------------

    def require(self, client_id: str) -> str | None:
        """The client's secret (None: public); Cognito's answer for an unknown client."""
        if client_id not in self._secrets:
            raise errors.ResourceNotFoundError(f"User pool client {client_id} does not exist.")
        return self._secrets[client_id]

    def check_secret_hash(self, client_id: str, username: str | None, given: str | None) -> str | None:
        """SECRET_HASH (InitiateAuth) or SecretHash (SignUp, ConfirmSignUp, ResendConfirmationCode,
        ForgotPassword, ConfirmForgotPassword) of a confidential client; nothing to prove for a public one."""
        secret = self.require(client_id)
        if secret is None:
            return None
        if not given:
            raise errors.NotAuthorizedError(
                f"Client {client_id} is configured with secret but SECRET_HASH was not received")
        if not username or not _same(given, secret_hash(secret, username, client_id)):
            raise errors.NotAuthorizedError(f"Unable to verify secret hash for client {client_id}")
        return secret

    def check_request(self, request: Mapping) -> str | None:
        """The SecretHash of an account operation's request (ClientId, Username, SecretHash)."""
        return self.check_secret_hash(request["ClientId"], request.get("Username"), request.get("SecretHash"))

    def check_client_secret(self, client_id: str, given: str | None) -> str | None:
        """RevokeToken's ClientSecret of a confidential client."""
        secret = self.require(client_id)
        if secret is not None and not (given and _same(given, secret)):
            raise errors.NotAuthorizedError(f"Unable to verify client secret for client {client_id}")
        return secret

    # --- /oauth2/token and /oauth2/revoke ---------------------------------------------------------

    def authenticate(self, form: Mapping[str, str], authorization: str | None) -> tuple[str, str | None]:
        """(client id, its proved secret or None) from the form's client_id / client_secret or an
        HTTP Basic Authorization header (RFC 6749 2.3.1), never both; raises OAuthClientError."""
        form_id, form_secret = form.get("client_id") or None, form.get("client_secret")
        basic = _basic(authorization)
        if basic is not None:
            if form_secret is not None or (form_id is not None and form_id != basic[0]):
                raise OAuthClientError("invalid_request", 400, "more than one client authentication method")
            client_id, given = basic
        else:
            client_id, given = form_id, form_secret
        if client_id is None or client_id not in self._secrets:
            raise OAuthClientError("invalid_client", 401, "client authentication failed")
        secret = self._secrets[client_id]
        if secret is None:
            if given:  # a secret the public client does not have cannot be right
                raise OAuthClientError("invalid_client", 401, "client authentication failed")
            return client_id, None
        if not given or not _same(given, secret):
            raise OAuthClientError("invalid_client", 401, "client authentication failed")
        return client_id, secret


def _basic(authorization: str | None) -> tuple[str, str] | None:
    """An Authorization header's Basic credentials, each form-urlencoded as RFC 6749 2.3.1 says."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise OAuthClientError("invalid_client", 401, "client authentication failed")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise OAuthClientError("invalid_client", 401, "client authentication failed") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise OAuthClientError("invalid_client", 401, "client authentication failed")
    return unquote_plus(client_id), unquote_plus(secret)
