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


def _service_secret(cfg) -> bytes:
    secret = str(cfg["SECRET_KEY"] or "").encode()
    if not secret:
        # Codes are hashed, SRP challenges sealed, under the service secret; without one, a
        # per-process random key keeps them unusable across processes rather than guessable.
        import secrets

        secret = secrets.token_bytes(32)
    return secret


def _codes(cfg, engine, secret: bytes):
    from datetime import timedelta

    from identity.codes.service import CodePolicy, Codes

    attempts, per_hour = int(cfg["CODE_MAX_ATTEMPTS"]), int(cfg["CODES_PER_HOUR"])
    signup = timedelta(hours=int(cfg["SIGNUP_CODE_HOURS"]))
    return Codes(engine, secret, {
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
    from identity.cognito.accounts import AccountOperations
    from identity.cognito.clients import AppClients
    from identity.cognito.delivery import CodeDelivery
    from identity.access_keys.service import AccessKeys
    from identity.cognito.admin import AdminOperations
    from identity.cognito.directory import AdminDirectory
    from identity.cognito.mfa import MfaOperations
    from identity.cognito.passwords import PasswordOperations
    from identity.cognito.service import CognitoService
    from identity.cognito.sessions import Sessions
    from identity.cognito.tokens import AccessTokens
    from identity.db import db
    from identity.keycloak.admin import AdminSession
    from identity.keycloak.gateway import KeycloakGateway
    from identity.keycloak.oidc import OIDC

    engine, realm, secret = db.engine, cfg["KEYCLOAK_REALM"], _service_secret(cfg)
    oidc = OIDC(cfg["KEYCLOAK_URL"], realm, cfg["PUBLIC_BASE_URL"], float(cfg["KEYCLOAK_TIMEOUT"]),
                user_pool_id=cfg["USER_POOL_ID"])
    keycloak = KeycloakGateway(AdminSession.from_config(cfg), realm)
    clients = AppClients(public=[cfg["KEYCLOAK_APP_CLIENT_ID"]], confidential=dict(cfg["APP_CLIENT_SECRETS"] or {}))
    s = _sign_in(cfg, engine, legacy, oidc, keycloak, secret, idle)
    tokens = AccessTokens(oidc, clients, keycloak)
    mailer = _mailer(cfg)
    delivery = CodeDelivery(_codes(cfg, engine, secret), mailer, s.sign_in.throttle, keycloak, s.migration.store,
                            prevent_user_existence_errors=bool(cfg["PREVENT_USER_EXISTENCE_ERRORS"]))
    sessions = Sessions(s.sign_in, s.srp, s.new_password, s.mfa, oidc, clients, tokens, keycloak)
    admin = AdminOperations(keycloak, s.migration, s.sign_in, sessions, delivery, cfg["USER_POOL_ID"],
                            reset_minutes=int(cfg["RESET_CODE_MINUTES"]))
    return CognitoService(
        sessions=sessions,
        passwords=PasswordOperations(delivery, keycloak, s.migration, s.sign_in, tokens, oidc, clients,
                                     reset_minutes=int(cfg["RESET_CODE_MINUTES"])),
        accounts=AccountOperations(delivery, keycloak, s.migration, tokens, clients,
                                   signup_hours=int(cfg["SIGNUP_CODE_HOURS"]), password_seen=s.sign_in.seen),
        mfa=MfaOperations(s.mfa, tokens),
        admin=admin, directory=AdminDirectory(keycloak, admin),
        access_keys=AccessKeys(engine, secret),
        tokens=tokens, sign_in=s.sign_in, verifiers=s.verifiers, migration=s.migration, keycloak=keycloak,
        oidc=oidc, clients=clients, mailer=mailer)


def _sign_in(cfg, engine, legacy, oidc, keycloak, secret: bytes, idle):
    """The sign-in use cases (password, SRP, new password, authenticator apps) and what they share."""
    from datetime import timedelta
    from functools import partial
    from types import SimpleNamespace

    from identity.cognito.throttle import ClientThrottle
    from identity.keycloak.grants import PasswordGrants
    from identity.legacy.migration import LegacyMigration, Lockout
    from identity.legacy.store import LegacyStore
    from identity.locks import sign_in_lock
    from identity.signin.challenges import ChallengeSessions
    from identity.signin.mfa import SoftwareTokenMfa
    from identity.signin.new_password import NewPassword
    from identity.signin.service import SignIn
    from identity.signin.srp import SrpSignIn
    from identity.signin.software_tokens import PendingSecrets
    from identity.signin.verifiers import KeepVerifier, Verifiers
    from identity.srp import SecretBlocks

    lock_timeout_s = max(5.0, oidc.timeout * 2)
    migration = LegacyMigration(
        LegacyStore(engine), legacy, keycloak,
        lockout=Lockout(int(cfg["LOCKOUT_THRESHOLD"]), int(cfg["LOCKOUT_BASE_SECONDS"]), int(cfg["LOCKOUT_MAX_SECONDS"])),
        failpoints=frozenset(cfg.get("FAILPOINTS") or ()))
    throttle = ClientThrottle(engine, int(cfg["IP_FAILURE_LIMIT"]), int(cfg["IP_FAILURE_WINDOW_SECONDS"]))
    grants = PasswordGrants(oidc, keycloak, patience_s=lock_timeout_s / 2,
                            scope="openid aws.cognito.signin.user.admin")
    verifiers = Verifiers(engine, cfg["USER_POOL_ID"], secret)
    sign_in = SignIn(migration, grants, throttle, partial(sign_in_lock, engine, timeout=lock_timeout_s),
                     failure_floor_s=int(cfg["FAILED_SIGN_IN_FLOOR_MS"]) / 1000, idle=idle,
                     password_seen=KeepVerifier(verifiers, keycloak))
    challenge_ttl = timedelta(seconds=int(cfg["SRP_CHALLENGE_SECONDS"]))
    srp_sign_in = SrpSignIn(sign_in, verifiers, keycloak, SecretBlocks(secret), stand_in_key=secret,
                            tolerance=timedelta(seconds=int(cfg["SRP_TIMESTAMP_TOLERANCE_SECONDS"])),
                            challenge_ttl=challenge_ttl)
    sessions = ChallengeSessions(secret, challenge_ttl)
    new_password = NewPassword(sign_in, sessions, verifiers, keycloak)
    mfa = SoftwareTokenMfa(sign_in, sessions, verifiers, PendingSecrets(engine, secret), keycloak)
    return SimpleNamespace(migration=migration, sign_in=sign_in, srp=srp_sign_in, new_password=new_password,
                           mfa=mfa, verifiers=verifiers)


cognito = Cognito()
