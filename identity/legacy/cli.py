"""`identity legacy ...`: operations on the legacy store."""

from __future__ import annotations

import os

import click
from flask import current_app
from flask.cli import AppGroup

legacy_cli = AppGroup("legacy", help="Legacy (Kii) password hashes in the legacy store.")


@legacy_cli.command("layer")
@click.option("--workers", type=click.IntRange(1, 64), default=lambda: os.cpu_count() or 1, show_default="cores")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=200, show_default=True)
def layer_command(workers, batch_size):
    """Layer every stored legacy hash with argon2id (resumable; safe to rerun)."""
    from identity.db import db
    from identity.legacy.credentials import LegacySettings
    from identity.legacy.layering import layer_all

    settings = LegacySettings.from_config(current_app.config)
    result = layer_all(db.engine, settings, workers=workers, batch_size=batch_size)
    figures = result.figures
    click.echo(f"layered {result.layered} hash(es) in {figures['elapsed_s']} s "
               f"({figures['rate_per_s']}/s with {workers} worker(s)); "
               f"{result.skipped} changed meanwhile and left alone")
    for reason, count in sorted(result.failed.items()):
        click.echo(f"not layered: {count} x {reason}")
    if result.failed:
        raise SystemExit(1)
