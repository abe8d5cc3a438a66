"""One Keycloak connection per process: the Admin API with a reused token, and realm URLs."""

from __future__ import annotations

import logging
import threading
from urllib.parse import urlencode

import requests

from identity.keycloak.admin import AdminSession

log = logging.getLogger(__name__)


class Keycloak:
    """Flask extension: the realm's URLs, readiness, and ``keycloak.admin`` for the commands.

    The Cognito operations get their Keycloak objects built for them (identity.cognito.build).
    """

    def __init__(self, app=None):
        self._local = {}
        self._lock = threading.Lock()
        self.app = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app) -> None:
        self.app = app
        app.extensions["keycloak"] = self

    @property
    def config(self):
        from flask import current_app
        return current_app.config

    def realm_url(self, public: bool = False) -> str:
        base = self.config["KEYCLOAK_PUBLIC_URL" if public else "KEYCLOAK_URL"]
        return f"{base}/realms/{self.config['KEYCLOAK_REALM']}"

    def authorize_url(self, params) -> str:
        """The realm's login page at its public address, with `params` (pairs or a dict) as the query."""
        return f"{self.realm_url(public=True)}/protocol/openid-connect/auth?{urlencode(params)}"

    def logout_url(self, params) -> str:
        """The realm's logout page at its public address, with `params` as the query."""
        return f"{self.realm_url(public=True)}/protocol/openid-connect/logout?{urlencode(params)}"

    @property
    def admin(self):
        """python-keycloak's admin of the configured realm, for the commands (bootstrap, import)."""
        cfg = self.config
        key = (cfg["KEYCLOAK_URL"], cfg["KEYCLOAK_REALM"], cfg["KEYCLOAK_ADMIN_CLIENT_ID"])
        with self._lock:
            session = self._local.get(key)
            if session is None:
                session = self._local[key] = AdminSession.from_config(cfg)
        return session()

    def check_ready(self) -> str:
        """'ok' when the realm's discovery document answers, else a short reason."""
        url = self.realm_url() + "/.well-known/openid-configuration"
        try:
            response = requests.get(url, timeout=self.config["READINESS_TIMEOUT"])
        except requests.RequestException as exc:
            log.warning("readiness: keycloak unreachable", extra={"error": type(exc).__name__})
            return f"unreachable ({type(exc).__name__})"
        if response.status_code != 200:
            return f"realm not served (HTTP {response.status_code})"
        return "ok"


keycloak = Keycloak()
