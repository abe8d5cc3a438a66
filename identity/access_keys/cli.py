"""`identity access-keys create|list|disable|delete`: the operator's management of access keys."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

access_keys_cli = AppGroup("access-keys", help="Access keys for the SigV4-signed admin operations.")


def _keys():
    return current_app.extensions["cognito"].service.access_keys


def _operations() -> set[str]:
    from identity.cognito.api import SIGNED

    return set(SIGNED)


@access_keys_cli.command("create")
@click.option("--name", required=True, help="Who holds the key (a backend system), unique.")
@click.option("--allow", "allow", required=True, help="The operations it may call, comma-separated "
              "(AdminGetUser,ListUsers,...), or '*' for every admin operation.")
def create_command(name, allow):
    """Print a new key's id and secret. The secret is shown this once."""
    from identity.access_keys.service import KeyNameTaken

    wanted = {part.strip() for part in allow.split(",") if part.strip()}
    known = _operations()
    operations = known if wanted == {"*"} else wanted
    unknown = sorted(operations - known)
    if unknown or not operations or len(name) > 64 or not name.strip():
        raise click.UsageError(f"unknown operations: {', '.join(unknown)}; known: {', '.join(sorted(known))}"
                               if unknown else "a name of 1 to 64 characters and at least one operation")
    try:
        key_id, secret = _keys().create(name.strip(), sorted(operations))
    except KeyNameTaken:
        raise click.UsageError(f"a key named {name!r} exists already") from None
    click.echo(json.dumps({"AccessKeyId": key_id, "SecretAccessKey": secret, "Name": name.strip(),
                           "Operations": sorted(operations)}))
    click.echo("The secret is not shown again: give it to the system that signs with it now.", err=True)


@access_keys_cli.command("list")
def list_command():
    """One JSON line per key: id, name, operations, enabled (never the secret)."""
    for key in _keys().list():
        click.echo(json.dumps({"AccessKeyId": key.access_key_id, "Name": key.name, "Enabled": key.enabled,
                               "Operations": sorted(key.operations)}))


@access_keys_cli.command("disable")
@click.option("--name", required=True)
def disable_command(name):
    """The key's requests are refused from now on (UnrecognizedClientException)."""
    if not _keys().disable(name):
        raise click.UsageError(f"no key named {name!r}")
    click.echo(f"disabled {name}")


@access_keys_cli.command("delete")
@click.option("--name", required=True)
def delete_command(name):
    if not _keys().delete(name):
        raise click.UsageError(f"no key named {name!r}")
    click.echo(f"deleted {name}")
