"""The `identity` command: Flask's CLI around `create_app`, with the service's own commands
(identity/commands.py): `identity db upgrade` (Flask-Migrate), `identity keycloak bootstrap`, ...
"""

from __future__ import annotations

import sys

from flask.cli import FlaskGroup


def _create_app():
    from identity import create_app
    from identity.config import ConfigurationError

    try:
        return create_app()
    except ConfigurationError as exc:
        raise SystemExit(f"identity: {exc}") from None


cli = FlaskGroup(create_app=_create_app, help="The China-region identity service.")


def main() -> None:
    sys.exit(cli.main(prog_name="identity"))
