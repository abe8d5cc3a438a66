"""The China-region identity service: Cognito's contract in front of Keycloak."""

from flask import Flask

from identity import config, logs


def create_app(test_config=None):
    """Create and configure the service (Flask's application factory)."""
    app = Flask(__name__, instance_relative_config=False)
    config.load(app, test_config)
    logs.init_app(app)

    from identity import db, health, legacy
    from identity.keycloak import keycloak

    db.init_app(app)
    keycloak.init_app(app)
    legacy.init_app(app)

    app.register_blueprint(health.bp)

    from identity import cli

    cli.init_app(app)
    return app
