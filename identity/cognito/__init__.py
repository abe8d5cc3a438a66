"""The Cognito contract: the JSON API's operations, errors and tokens (shared/spec/token-contract.md).

Protocol logic lives here and never imports Flask; `identity.cognito.api`
only adapts requests and responses.
"""


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
        import os

        # Built after gunicorn forks: HTTP pools and the Admin API token are per process.
        if self._service is None or self._pid != os.getpid():
            self._service, self._pid = build_service(self.app), os.getpid()
        return self._service


def build_service(app):
    from datetime import timedelta

    from identity.accounts.codes import CodePolicy, Codes
    from identity.accounts.mail import MailQueue, Mailer
    from identity.cognito.clients import AppClients
    from identity.cognito.service import CognitoService
    from identity.cognito.throttle import ClientThrottle
    from identity.db import db
    from identity.keycloak import keycloak
    from identity.keycloak.oidc import OIDC
    from identity.keycloak.passwords import migrate_password
    from identity.legacy.migration import LegacyMigration, Lockout

    cfg = app.config
    realm = cfg["KEYCLOAK_REALM"]
    oidc = OIDC(cfg["KEYCLOAK_URL"], realm, cfg["PUBLIC_BASE_URL"], float(cfg["KEYCLOAK_TIMEOUT"]))
    clients = AppClients(public=[cfg["KEYCLOAK_APP_CLIENT_ID"]], confidential=dict(cfg["APP_CLIENT_SECRETS"] or {}))

    def admin():
        with app.app_context():
            return keycloak.admin

    migration = LegacyMigration(
        db.engine, app.extensions["legacy"],
        set_password=lambda user_id, password, ticket_for: migrate_password(admin(), realm, user_id, password,
                                                                            ticket_for),
        lockout=Lockout(int(cfg["LOCKOUT_THRESHOLD"]), int(cfg["LOCKOUT_BASE_SECONDS"]),
                        int(cfg["LOCKOUT_MAX_SECONDS"])),
        failpoints=frozenset(cfg.get("FAILPOINTS") or ()))
    throttle = ClientThrottle(db.engine, int(cfg["IP_FAILURE_LIMIT"]), int(cfg["IP_FAILURE_WINDOW_SECONDS"]))
    secret = str(cfg["SECRET_KEY"] or "").encode()
    if not secret:
        # Codes are hashed under the service secret; without one, a per-process random key
        # keeps them unusable across processes rather than guessable.
        import secrets as _secrets
        secret = _secrets.token_bytes(32)
    codes = Codes(db.engine, secret, {
        "reset": CodePolicy(timedelta(minutes=int(cfg["RESET_CODE_MINUTES"])), int(cfg["CODE_MAX_ATTEMPTS"]),
                            int(cfg["CODES_PER_HOUR"])),
        "signup": CodePolicy(timedelta(hours=int(cfg["SIGNUP_CODE_HOURS"])), int(cfg["CODE_MAX_ATTEMPTS"]),
                             int(cfg["CODES_PER_HOUR"])),
        "attribute": CodePolicy(timedelta(hours=int(cfg["SIGNUP_CODE_HOURS"])), int(cfg["CODE_MAX_ATTEMPTS"]),
                                int(cfg["CODES_PER_HOUR"]))},
        failure_limit=int(cfg["CODE_FAILURE_LIMIT"]), failure_window_seconds=int(cfg["CODE_FAILURE_WINDOW_SECONDS"]))
    # Sent by this process's mail thread, after the answer (identity.accounts.mail.MailQueue).
    mailer = MailQueue(Mailer(host=cfg["SMTP_HOST"], port=int(cfg["SMTP_PORT"]), sender=cfg["MAIL_FROM"],
                              starttls=bool(cfg["SMTP_STARTTLS"]), tls=bool(cfg["SMTP_TLS"]),
                              username=cfg["SMTP_USERNAME"], password=cfg["SMTP_PASSWORD"],
                              timeout=float(cfg["SMTP_TIMEOUT"])))
    service = CognitoService(oidc, admin, realm, clients, migration, throttle,
                             failure_floor_s=int(cfg["FAILED_SIGN_IN_FLOOR_MS"]) / 1000, codes=codes, mailer=mailer,
                             reset_minutes=int(cfg["RESET_CODE_MINUTES"]), signup_hours=int(cfg["SIGNUP_CODE_HOURS"]),
                             idle=app.extensions["admission"].idle)
    service.prevent_user_existence_errors = bool(cfg["PREVENT_USER_EXISTENCE_ERRORS"])
    return service


cognito = Cognito()
