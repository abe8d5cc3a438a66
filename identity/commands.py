"""The service's own commands, registered on the app's CLI by `create_app` (`identity keycloak
bootstrap`, `identity audit`, and the importer's and the legacy store's groups)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

keycloak_cli = AppGroup("keycloak", help="Configure the Keycloak realm.")


@keycloak_cli.command("bootstrap")
@click.option("--username", envvar="IDENTITY_KEYCLOAK_BOOTSTRAP_USERNAME",
              help="Master-realm admin (default: IDENTITY_KEYCLOAK_BOOTSTRAP_USERNAME).")
@click.option("--password", envvar="IDENTITY_KEYCLOAK_BOOTSTRAP_PASSWORD", hidden=True)
def bootstrap_command(username, password):
    """Create or update the realm, clients, mappers and user profile from config/keycloak/."""
    from identity.keycloak.bootstrap import Settings, bootstrap, connect

    cfg = current_app.config
    username = username or cfg["KEYCLOAK_BOOTSTRAP_USERNAME"]
    password = password or cfg["KEYCLOAK_BOOTSTRAP_PASSWORD"]
    if not (username and password):
        raise click.UsageError("set IDENTITY_KEYCLOAK_BOOTSTRAP_USERNAME and _PASSWORD (a master-realm admin)")
    if not cfg["KEYCLOAK_ADMIN_CLIENT_SECRET"]:
        raise click.UsageError("set IDENTITY_KEYCLOAK_ADMIN_CLIENT_SECRET (the service's Admin API client)")
    settings = Settings.from_app_config(cfg)
    changes = bootstrap(connect(settings, username, str(password)), settings)
    for change in changes:
        click.echo(f"changed: {change}")
    click.echo(f"realm {settings.realm}: {len(changes)} change(s)" if changes else
               f"realm {settings.realm}: already up to date")


@click.command("audit")
@with_appcontext
@click.option("--user", help="A Kii userID or a Keycloak user id.")
@click.option("--since", type=click.DateTime(), help="From this time (UTC), e.g. 2026-11-26T00:00:00.")
@click.option("--until", type=click.DateTime(), help="Before this time (UTC).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
def audit_command(user, since, until, limit):
    """The audit trail (imported, migrated, reset, locked_out, deleted, mfa_app_set, mfa_app_removed), one JSON
    line each."""
    import json

    from identity.audit import query
    from identity.db import db

    for event in query(db.engine, user=user, since=since, until=until, limit=limit):
        event["at"] = event["at"].isoformat() + "Z"
        event["detail"] = json.loads(event["detail"]) if event["detail"] else None
        click.echo(json.dumps(event, ensure_ascii=False))


def init_app(app) -> None:
    from identity.access_keys.cli import access_keys_cli
    from identity.importer.cli import import_profiles_command, migration_cli
    from identity.legacy.cli import legacy_cli

    app.cli.add_command(keycloak_cli)
    app.cli.add_command(legacy_cli)
    app.cli.add_command(import_profiles_command)
    app.cli.add_command(migration_cli)
    app.cli.add_command(audit_command)
    app.cli.add_command(access_keys_cli)
