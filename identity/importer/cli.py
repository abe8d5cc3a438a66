"""`identity import-profiles` and `identity migration ...`: the operator's migration commands."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

migration_cli = AppGroup("migration", help="Evidence about the Kii migration: stats and verification.")

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("import-profiles")
@click.option("--profiles", type=FILE, required=True, help="Kii profile export (JSON Lines, gzip or plain).")
@click.option("--hashes", type=FILE, help="Kii password-hash export (CSV userID,hash[,salt]).")
@click.option("--deleted", type=FILE, help="userIDs deleted on Kii since the last delivery, one a line.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the JSON report (a Markdown summary goes beside it).")
@click.option("--workers", type=click.IntRange(1, 32), default=2, show_default=True,
              help="Batches written to Keycloak at once.")
@click.option("--batch-size", type=click.IntRange(1, 1000), default=200, show_default=True,
              help="Users per call of the provider's bulk endpoint, one transaction each (docs/benchmarks.md).")
@click.option("--dry-run", is_flag=True, help="Validate and report; write nothing to Keycloak or the store.")
def import_profiles_command(profiles, hashes, deleted, report, workers, batch_size, dry_run):
    """Import Kii users into Keycloak and their hashes into the legacy store (resumable)."""
    from identity.db import db
    from identity.keycloak import keycloak
    from identity.keycloak.writer import KeycloakWriter
    from identity.importer.report import write_report
    from identity.importer.run import Importer, ImportOptions

    cfg = current_app.config
    options = ImportOptions(profiles=profiles, hashes=hashes, deleted=deleted, report=report, workers=workers,
                            batch_size=batch_size, dry_run=dry_run, bmp_only=bool(cfg["KEYCLOAK_BMP_ONLY"]))
    writer = None if dry_run else KeycloakWriter(keycloak.admin, cfg["KEYCLOAK_REALM"])
    if not cfg["SECRET_KEY"]:
        raise click.UsageError("set IDENTITY_SECRET_KEY: it keys the fingerprints of imported hashes")
    importer = Importer(db.engine, options, current_app.extensions["legacy"], cfg["SECRET_KEY"], writer,
                        realm=cfg["KEYCLOAK_REALM"])
    result = importer.run()
    if report:
        json_path, md_path = write_report(result, report)
        click.echo(f"report: {json_path} and {md_path}")
    if result["run"].get("already_complete"):
        click.echo("already complete, nothing written: this run (same files and options) ended before; "
                   "its figures follow")
    p = result["profiles"]
    click.echo(f"profiles: {p['input']} read, {p['imported']} imported, {p['updated']} updated, "
               f"{p['unchanged']} unchanged, {p['failed']} failed")
    for reason, entry in result["failures"].items():
        click.echo(f"  failed: {entry['count']} x {reason}")
    h = result["hashes"]
    click.echo(f"hashes: {h['input']} read, {h['stored']} stored, {h['unchanged']} unchanged, {h['kept']} kept, "
               f"{h['unused']} unused, {h['failed']} failed")
    if not all(result["check"].values()):
        raise click.ClickException("the report's totals do not add up: " + json.dumps(result["check"]))


@migration_cli.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def stats_command(as_json):
    """Users in the legacy store by migration state (one indexed query)."""
    from identity.db import db
    from identity.legacy.store import migration_stats

    stats = migration_stats(db.engine)
    if as_json:
        click.echo(json.dumps(stats))
        return
    for name, value in stats.items():
        click.echo(f"{name:15} {value}")


@migration_cli.command("verify")
@click.option("--profiles", type=FILE, required=True)
@click.option("--hashes", type=FILE)
@click.option("--deleted", type=FILE, help="The deletions of the same delivery: those users are expected disabled.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the result as JSON here, and a Markdown summary beside it (.md).")
def verify_command(profiles, hashes, deleted, report):
    """Reconcile the delivery with Keycloak and the legacy store; exit 1 only when something needs action."""
    from identity.db import db
    from identity.importer.reconcile import render_markdown
    from identity.importer.verify import Verifier
    from identity.keycloak import keycloak
    from identity.keycloak.writer import KeycloakWriter

    cfg = current_app.config
    if not cfg["SECRET_KEY"]:
        raise click.UsageError("set IDENTITY_SECRET_KEY (the one the import used): it keys the hash fingerprints")
    users = KeycloakWriter(keycloak.admin, cfg["KEYCLOAK_REALM"])  # reads only: the service's account will do
    result = Verifier(db.engine, users, cfg["KEYCLOAK_REALM"], current_app.extensions["legacy"],
                      cfg["SECRET_KEY"], bmp_only=bool(cfg["KEYCLOAK_BMP_ONLY"])).run(profiles, hashes, deleted)
    if report:
        Path(report).parent.mkdir(parents=True, exist_ok=True)
        Path(report).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        Path(report).with_suffix(".md").write_text(render_markdown(result), encoding="utf-8")
    t = result["totals"]
    click.echo(f"profiles: {t['input']} read, {t['matched']} matched, {t['different']} different, "
               f"{t['missing']} missing, {t['invalid']} invalid in the export; {t['extra']} Kii users not in it; "
               f"{t['signed_up_here']} signed up here")
    for reason, entry in result["reasons"].items():
        mark = "ACTION" if entry["action"] else "info"
        click.echo(f"  {mark} {reason}: {entry['count']} (e.g. {', '.join(entry['examples'])})")
    if not result["add_up"]:
        raise click.ClickException("totals do not add up")
    if not result["ok"]:
        raise SystemExit(1)
