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
    from identity.cognito.service import CognitoService
    from identity.cognito.throttle import ClientThrottle
    from identity.db import db
    from identity.keycloak import keycloak
    from identity.keycloak.oidc import OIDC
    from identity.keycloak.passwords import set_password
    from identity.legacy.migration import LegacyMigration, Lockout

    cfg = app.config
    realm = cfg["KEYCLOAK_REALM"]
    oidc = OIDC(cfg["KEYCLOAK_URL"], realm, cfg["PUBLIC_BASE_URL"], float(cfg["KEYCLOAK_TIMEOUT"]))
    clients = {cfg["KEYCLOAK_APP_CLIENT_ID"]: None, **dict(cfg["APP_CLIENT_SECRETS"])}

    def admin():
        with app.app_context():
            return keycloak.admin

    migration = LegacyMigration(
        db.engine, app.extensions["legacy"],
        set_password=lambda user_id, password: set_password(admin(), realm, user_id, password, legacy=True),
        lockout=Lockout(int(cfg["LOCKOUT_THRESHOLD"]), int(cfg["LOCKOUT_BASE_SECONDS"]),
                        int(cfg["LOCKOUT_MAX_SECONDS"])),
        failpoints=frozenset(cfg.get("FAILPOINTS") or ()))
    throttle = ClientThrottle(db.engine, int(cfg["IP_FAILURE_LIMIT"]), int(cfg["IP_FAILURE_WINDOW_SECONDS"]))
    return CognitoService(oidc, admin, realm, clients, migration, throttle,
                          failure_floor_s=int(cfg["FAILED_SIGN_IN_FLOOR_MS"]) / 1000)


cognito = Cognito()
