"""The China-region identity service: Cognito's contract in front of Keycloak."""

from flask import Flask

from identity import config, logs


def create_app(test_config=None):
    """Create and configure the service (Flask's application factory)."""
    app = Flask(__name__, instance_relative_config=False)
    config.load(app, test_config)
    logs.init_app(app)

    from identity import admission, db, health, legacy, metrics, security
    # Every table's model, so the metadata is whole for Alembic's comparisons (the models import
    # db; db imports none of them).
    from identity import audit  # noqa: F401
    from identity.access_keys import models as access_key_models  # noqa: F401
    from identity.codes import models as code_models  # noqa: F401
    from identity.cognito import models as cognito_models  # noqa: F401
    from identity.importer import models as import_models  # noqa: F401
    from identity.legacy import models as legacy_models  # noqa: F401
    from identity.signin import models as signin_models  # noqa: F401
    from identity.cognito import cognito
    from identity.keycloak import keycloak
    from identity.oauth import endpoints as oauth_endpoints

    db.init_app(app)
    admission.init_app(app)
    keycloak.init_app(app)
    legacy.init_app(app)
    cognito.init_app(app)
    metrics.init_app(app)
    security.init_app(app)

    app.register_blueprint(health.bp)
    app.register_blueprint(oauth_endpoints.bp)
    from identity.bridge import endpoints as bridge_endpoints

    app.register_blueprint(bridge_endpoints.bp)
    if app.config["KEYCLOAK_PROXY"]:
        from identity.oauth import keycloak_proxy

        app.register_blueprint(keycloak_proxy.bp)

    if int(app.config["TRUSTED_PROXIES"]) > 0:
        # The client address (throttling, audit) from X-Forwarded-For, trusting that many proxies.
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    from identity import commands

    commands.init_app(app)
    return app
