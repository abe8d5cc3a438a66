"""Keycloak's OpenID Connect endpoints, as the service calls them.

Every call carries ``X-Forwarded-*`` headers built from the public base URL,
so Keycloak (started with ``--proxy-headers xforwarded``) names the public
issuer in the tokens it issues and accepts them back, whichever internal
address the service reaches it at. One pooled HTTP session per process.

The token endpoint (every sign-in and refresh) is called through libcurl
(pycurl), one handle per thread: it costs far less CPU per call than urllib3
or requests (docs/benchmarks.md has the figures). The rarer calls keep
requests' conveniences.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import threading
from urllib.parse import urlencode, urlsplit

import certifi
import pycurl
import requests
from requests.adapters import HTTPAdapter

from identity.keycloak.errors import KeycloakUnavailable, OAuthError

__all__ = ["OIDC", "KeycloakUnavailable", "OAuthError", "browser_path_allowed", "token_lifetime"]


FORWARDING = re.compile(r"x-forwarded-|forwarded$|x-real-ip$", re.IGNORECASE)
# Segments of plain characters only: no '%', no backslash, no '.' or '..' on its own, none empty.
SEGMENT = r"(?!\.\.?(?:/|$))[A-Za-z0-9._~!$&'()*+,;=:@-]+"


@functools.lru_cache(maxsize=8)
def browser_paths(realm: str) -> re.Pattern:
    realm = re.escape(realm)
    return re.compile(
        rf"/realms/{realm}/protocol/openid-connect/(?:auth|logout|logout/logout-confirm)"
        rf"|/realms/{realm}/login-actions(?:/{SEGMENT})+"
        rf"|/resources(?:/{SEGMENT})+")


def browser_path_allowed(realm: str, raw_path: str) -> bool:
    """`raw_path` (as the client sent it, still percent-encoded) is what nginx's public server lets a
    browser reach: the realm's login and logout pages, its `login-actions`, the theme resources."""
    return browser_paths(realm).fullmatch(raw_path) is not None


def forwarded_headers(public_base_url: str) -> dict[str, str]:
    parts = urlsplit(public_base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return {"X-Forwarded-Proto": parts.scheme, "X-Forwarded-Host": parts.hostname or "",
            "X-Forwarded-Port": str(port),
            **({"X-Forwarded-Prefix": parts.path.rstrip("/")} if parts.path.rstrip("/") else {})}


class OIDC:
    def __init__(self, internal_url: str, realm: str, public_base_url: str, timeout: float,
                 user_pool_id: str | None = None):
        self.server_url = internal_url.rstrip("/")
        self.base = f"{internal_url.rstrip('/')}/realms/{realm}/protocol/openid-connect"
        self.realm_url = f"{internal_url.rstrip('/')}/realms/{realm}"
        # Cognito's shape, {base}/{user pool id}: the app clients' ID and access tokens carry it
        # (keycloak_spi_bridge's CognitoIssuerMapper); Keycloak's own is {base}/realms/{realm}.
        self.issuer = f"{public_base_url.rstrip('/')}/{user_pool_id}" if user_pool_id else \
            f"{public_base_url.rstrip('/')}/realms/{realm}"
        self.headers = forwarded_headers(public_base_url)
        self.timeout = timeout
        self.realm = realm
        self._local = threading.local()
        self._token_headers = [f"{name}: {value}" for name, value in self.headers.items()] + [
            "Content-Type: application/x-www-form-urlencoded", "Accept: application/json",
            "Expect:"]  # no 100-continue round trip whatever the form's size

    @property
    def curl(self) -> pycurl.Curl:
        """This thread's libcurl handle for the token endpoint; it keeps its connections to Keycloak alive.

        A handle is not thread-safe, and not fork-safe: one per thread and process (gunicorn forks).
        """
        pid = os.getpid()
        handle = getattr(self._local, "curl", None)
        if handle is None or self._local.curl_pid != pid:
            handle = pycurl.Curl()
            handle.setopt(pycurl.URL, f"{self.base}/token")
            handle.setopt(pycurl.HTTPHEADER, self._token_headers)
            handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
            handle.setopt(pycurl.PROXY, "")            # never a proxy from the environment (as trust_env=False)
            handle.setopt(pycurl.NOSIGNAL, 1)          # timeouts without SIGALRM: required with threads
            handle.setopt(pycurl.TIMEOUT_MS, int(self.timeout * 1000))
            handle.setopt(pycurl.CONNECTTIMEOUT_MS, int(min(self.timeout, 5.0) * 1000))
            handle.setopt(pycurl.CAINFO, certifi.where())  # the same trust store as requests
            self._local.curl, self._local.curl_pid = handle, pid
        return handle

    @property
    def session(self) -> requests.Session:
        # One pool per process and thread: gunicorn forks, and requests' pools are not fork-safe.
        key = os.getpid()
        session = getattr(self._local, "session", None)
        if session is None or getattr(self._local, "pid", None) != key:
            session = requests.Session()
            session.trust_env = False  # no proxy/netrc look-ups in the environment on every call
            session.mount("http://", HTTPAdapter(pool_connections=4, pool_maxsize=32))
            session.mount("https://", HTTPAdapter(pool_connections=4, pool_maxsize=32))
            self._local.session, self._local.pid = session, key
        return session

    def _call(self, method: str, url: str, *, client_address: str | None = None, **kwargs) -> requests.Response:
        # Keycloak builds its links and records addresses from the forwarding headers: only the
        # service sets them, whatever a caller (the development proxy: a client's headers) passed.
        headers = {k: v for k, v in kwargs.pop("headers", {}).items() if not FORWARDING.match(k)}
        headers.update(self.headers)
        if client_address:
            headers["X-Forwarded-For"] = client_address
        try:
            response = self.session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise KeycloakUnavailable(type(exc).__name__) from None
        if response.status_code >= 500 and not kwargs.get("stream"):
            raise KeycloakUnavailable(f"HTTP {response.status_code}")
        return response

    def forward(self, method: str, raw_path: str, *, client_address: str | None = None,
                **kwargs) -> requests.Response:
        """A browser's request to one of the realm's browser paths, passed on to Keycloak as it came
        (the development proxy); KeycloakUnavailable as any call here."""
        if not browser_path_allowed(self.realm, raw_path):
            raise ValueError("not a browser path of the realm")
        return self._call(method, self.server_url + raw_path, client_address=client_address, **kwargs)

    def _token(self, data: dict, client_id: str, client_secret: str | None) -> dict:
        data = {**data, "client_id": client_id}
        if client_secret:
            data["client_secret"] = client_secret
        handle, chunks = self.curl, []
        handle.setopt(pycurl.POSTFIELDS, urlencode(data))
        handle.setopt(pycurl.WRITEFUNCTION, chunks.append)
        try:
            handle.perform()
        except pycurl.error as exc:
            # The code only (curl's text can name the URL): a timeout, a refused connection, ...
            raise KeycloakUnavailable(f"curl error {exc.args[0]}") from None
        finally:
            handle.setopt(pycurl.POSTFIELDS, "")  # the form carries a password or a token: not kept
        status = handle.getinfo(pycurl.RESPONSE_CODE)
        if status >= 500:
            raise KeycloakUnavailable(f"HTTP {status}")
        try:
            body = json.loads(b"".join(chunks))
        except ValueError:
            body = {}
        if status != 200 or not isinstance(body, dict):
            raise _error(status, body)
        body["expires_in"] = token_lifetime(body)
        return body

    def password_grant(self, client_id: str, client_secret: str | None, username: str, password: str,
                       scope: str = "openid", migration_ticket: str | None = None, otp: str | None = None) -> dict:
        """The password grant; with a first-login `migration_ticket` the realm's direct-grant flow
        (keycloak_spi_bridge) takes the ticket in place of checking the password again, and `otp` is
        the one-time code of a user with an authenticator app."""
        form = {"grant_type": "password", "username": username, "password": password, "scope": scope}
        if migration_ticket:
            form["migration_ticket"] = migration_ticket
        if otp:
            form["otp"] = otp
        return self._token(form, client_id, client_secret)

    def refresh_grant(self, client_id: str, client_secret: str | None, refresh_token: str) -> dict:
        return self._token({"grant_type": "refresh_token", "refresh_token": refresh_token}, client_id, client_secret)

    def code_grant(self, form: dict, client_id: str, client_secret: str | None) -> dict:
        return self._token(form, client_id, client_secret)

    def revoke(self, client_id: str, client_secret: str | None, token: str) -> None:
        data = {"token": token, "token_type_hint": "refresh_token", "client_id": client_id}
        if client_secret:
            data["client_secret"] = client_secret
        response = self._call("POST", f"{self.base}/revoke", data=data)
        if response.status_code not in (200, 204):
            raise _oauth_error(response)

    def userinfo(self, access_token: str) -> dict:
        response = self._call("GET", f"{self.base}/userinfo", headers={"Authorization": f"Bearer {access_token}"})
        if response.status_code != 200:
            raise OAuthError(response.status_code, "invalid_token", "access token not active")
        return response.json()

    def certs(self) -> dict:
        return self._json(self._call("GET", f"{self.base}/certs"))

    def discovery(self) -> dict:
        return self._json(self._call("GET", f"{self.realm_url}/.well-known/openid-configuration"))

    @staticmethod
    def _json(response: requests.Response) -> dict:
        """A document Keycloak serves; KeycloakUnavailable when it does not (the realm is missing, say)."""
        try:
            document = response.json() if response.status_code == 200 else None
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise KeycloakUnavailable(f"HTTP {response.status_code}")
        return document


def unverified_claims(token: str) -> dict:
    """The claims of a token straight from Keycloak's token endpoint (read, not verified: only for
    tokens the service has just been given by Keycloak itself); {} when it cannot be read."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, AttributeError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def token_lifetime(tokens: dict) -> int:
    """The access token's validity in seconds, as Cognito reports ``ExpiresIn`` (3600).

    Keycloak answers with the seconds left, counted after it issued the token,
    which reads 3599 whenever a second ticks in between. The token's own
    ``exp - iat`` is the lifetime it was issued with. The token comes straight
    from Keycloak's token endpoint, so its claims are read, not verified.
    """
    try:
        payload = tokens["access_token"].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        lifetime = claims["exp"] - claims["iat"]
        if isinstance(lifetime, int) and lifetime > 0:
            return lifetime
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        pass
    return int(tokens.get("expires_in", 3600))


def _oauth_error(response: requests.Response) -> OAuthError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    return _error(response.status_code, body)


def _error(status: int, body) -> OAuthError:
    body = body if isinstance(body, dict) else {}
    return OAuthError(status, str(body.get("error", "invalid_request")), str(body.get("error_description", "")))
