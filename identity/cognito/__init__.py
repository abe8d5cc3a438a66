"""The Cognito contract: the JSON API's operations, errors and tokens (shared/spec/token-contract.md).

Protocol logic lives here and never imports Flask; `identity.cognito.api` only adapts requests and
responses. `build_service` is the one place the service's objects are made and handed to each other.
"""

from __future__ import annotations

import os


class Cognito:
    """Flask extension: each app gets its own CognitoService, built per process on first use."""

    def init_app(self, app) -> None:
        app.extensions["cognito"] = _AppState(app)
        from identity.cognito.api import bp

        app.register_blueprint(bp)


class _AppState:
    def __init__(self, app):
        self.app = app
        self._service = None
        self._pid = None

    @property
    def service(self):
        # Built after gunicorn forks: HTTP pools and the Admin API token are per process.
        if self._service is None or self._pid != os.getpid():
            app = self.app
            self._service = build_service(app.config, app.extensions["legacy"], app.extensions["admission"].idle)
            self._pid = os.getpid()
        return self._service


def _code_secret(cfg) -> bytes:
    secret = str(cfg["SECRET_KEY"] or "").encode()
    if not secret:
        # Codes are hashed under the service secret; without one, a per-process random key
        # keeps them unusable across processes rather than guessable.
        import secrets

        secret = secrets.token_bytes(32)
    return secret


def _codes(cfg, engine):
    from datetime import timedelta

    from identity.codes.service import CodePolicy, Codes

    attempts, per_hour = int(cfg["CODE_MAX_ATTEMPTS"]), int(cfg["CODES_PER_HOUR"])
    signup = timedelta(hours=int(cfg["SIGNUP_CODE_HOURS"]))
    return Codes(engine, _code_secret(cfg), {
        "reset": CodePolicy(timedelta(minutes=int(cfg["RESET_CODE_MINUTES"])), attempts, per_hour),
        "signup": CodePolicy(signup, attempts, per_hour),
        "attribute": CodePolicy(signup, attempts, per_hour)},
        failure_limit=int(cfg["CODE_FAILURE_LIMIT"]), failure_window_seconds=int(cfg["CODE_FAILURE_WINDOW_SECONDS"]))


def _mailer(cfg):
    from identity.codes.mail import MailQueue, Mailer

    # Sent by this process's mail thread, after the answer (identity.codes.mail.MailQueue).
    return MailQueue(Mailer(host=cfg["SMTP_HOST"], port=int(cfg["SMTP_PORT"]), sender=cfg["MAIL_FROM"],
                            starttls=bool(cfg["SMTP_STARTTLS"]), tls=bool(cfg["SMTP_TLS"]),
                            username=cfg["SMTP_USERNAME"], password=cfg["SMTP_PASSWORD"],
                            timeout=float(cfg["SMTP_TIMEOUT"])))


def build_service(cfg, legacy, idle=None):
    """Every object the Cognito operations and the bridge use, made once per process from the config."""
    from functools import partial

    from identity.cognito.accounts import AccountOperations
    from identity.cognito.clients import AppClients
    from identity.cognito.delivery import CodeDelivery
    from identity.cognito.passwords import PasswordOperations
    from identity.cognito.service import CognitoService
    from identity.cognito.sessions import Sessions
    from identity.cognito.throttle import ClientThrottle
    from identity.cognito.tokens import AccessTokens
    from identity.db import db
    from identity.keycloak.admin import AdminSession
    from identity.keycloak.gateway import KeycloakGateway
    from identity.keycloak.grants import PasswordGrants
    from identity.keycloak.oidc import OIDC
    from identity.legacy.migration import LegacyMigration, Lockout
    from identity.legacy.store import LegacyStore
    from identity.locks import sign_in_lock
    from identity.signin.service import SignIn

    engine, realm = db.engine, cfg["KEYCLOAK_REALM"]
    oidc = OIDC(cfg["KEYCLOAK_URL"], realm, cfg["PUBLIC_BASE_URL"], float(cfg["KEYCLOAK_TIMEOUT"]))
    lock_timeout_s = max(5.0, oidc.timeout * 2)
    keycloak = KeycloakGateway(AdminSession.from_config(cfg), realm)
    clients = AppClients(public=[cfg["KEYCLOAK_APP_CLIENT_ID"]], confidential=dict(cfg["APP_CLIENT_SECRETS"] or {}))
    migration = LegacyMigration(
        LegacyStore(engine), legacy, keycloak,
        lockout=Lockout(int(cfg["LOCKOUT_THRESHOLD"]), int(cfg["LOCKOUT_BASE_SECONDS"]), int(cfg["LOCKOUT_MAX_SECONDS"])),
        failpoints=frozenset(cfg.get("FAILPOINTS") or ()))
    throttle = ClientThrottle(engine, int(cfg["IP_FAILURE_LIMIT"]), int(cfg["IP_FAILURE_WINDOW_SECONDS"]))
    grants = PasswordGrants(oidc, keycloak, patience_s=lock_timeout_s / 2,
                            scope="openid aws.cognito.signin.user.admin")
    sign_in = SignIn(migration, grants, throttle, partial(sign_in_lock, engine, timeout=lock_timeout_s),
                     failure_floor_s=int(cfg["FAILED_SIGN_IN_FLOOR_MS"]) / 1000, idle=idle)
    tokens = AccessTokens(oidc, clients)
    mailer = _mailer(cfg)
    delivery = CodeDelivery(_codes(cfg, engine), mailer, throttle, keycloak, migration.store,
                            prevent_user_existence_errors=bool(cfg["PREVENT_USER_EXISTENCE_ERRORS"]))
    return CognitoService(
        sessions=Sessions(sign_in, oidc, clients, tokens, keycloak),
        passwords=PasswordOperations(delivery, keycloak, migration, sign_in, tokens, oidc, clients,
                                     reset_minutes=int(cfg["RESET_CODE_MINUTES"])),
        accounts=AccountOperations(delivery, keycloak, migration, tokens, clients,
                                   signup_hours=int(cfg["SIGNUP_CODE_HOURS"])),
        tokens=tokens, sign_in=sign_in, migration=migration, keycloak=keycloak, oidc=oidc, clients=clients,
        mailer=mailer)


cognito = Cognito()
