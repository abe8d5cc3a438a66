"""A later delivery's unchanged lines recorded by set operations (unchanged.py) come to the very ledger the
planner writes line by line, and the lines it cannot prove unchanged still go through the planner."""

from __future__ import annotations

import gzip
import json

import sqlalchemy as sa
from flask import current_app

from identity.db import db
from identity.importer.ledger import RECORDS, UNCHANGED, line_sources
from identity.importer.models import ImportProfile
from identity.importer.run import Importer, ImportOptions
from identity.keycloak import keycloak
from identity.keycloak.writer import KeycloakWriter
from identity.legacy.models import LegacyUser, MigrationState
from tests.importer.conftest import gen_cutoff, run_import
from tests.importer.test_import import args_for

COLUMNS = ("line_no", "kii_user_id", "outcome", "reason", "flags")


def importer(app, export_dir, **options) -> Importer:
    cfg = app.config
    writer = None if options.get("dry_run") else KeycloakWriter(keycloak.admin, cfg["KEYCLOAK_REALM"])
    return Importer(db.engine, ImportOptions(profiles=export_dir / "profiles.jsonl.gz",
                                             hashes=export_dir / "hashes.csv.gz", batch_size=50, **options),
                    current_app.extensions["legacy"], cfg["SECRET_KEY"], writer, realm=cfg["KEYCLOAK_REALM"])


def records(engine, run_id: str) -> list[tuple]:
    """Every line's record, from whichever half of the ledger holds it (the identifiers a line claimed are
    the planner's alone to keep: an unchanged line's are its store row's)."""
    with engine.connect() as conn:
        return sorted((source, *row) for source in ("profiles", "hashes", "deleted")
                      for line in line_sources(run_id, source)
                      for row in conn.execute(sa.select(*[line.c[c] for c in COLUMNS])))


def _user(line: bytes) -> dict | None:
    try:
        user = json.loads(line)
    except ValueError:
        return None
    return user if isinstance(user, dict) and isinstance(user.get("userID"), str) else None


def second_delivery(export, tmp_path):
    """A cut-off delivery (gen_cutoff.py), and lines the set operation must leave to the planner: a
    user's newer record ahead of their unchanged one, an email moved to another user's line, an older
    record that differs."""
    second = tmp_path / "second"
    gen_cutoff.cutoff(export["dir"], second, seed=3, changed=0.03, new=0.02, deleted=0.01, rehashed=0.05)
    manifest = json.loads((second / "manifest.json").read_text(encoding="utf-8"))
    touched = {*manifest["rehashed"], *manifest["deleted"], *(u for ids in manifest["changed"].values() for u in ids)}
    lines = gzip.decompress((second / "profiles.jsonl.gz").read_bytes()).splitlines()
    users = [user for line in lines if (user := _user(line)) and user["userID"] not in touched]
    with_email = [u for u in users if u.get("emailAddress") and "@" in u["emailAddress"]]
    lines.insert(0, json.dumps(dict(users[10], displayName="新名字", _modified=users[10]["_modified"] + 10),
                               ensure_ascii=False).encode())
    taker = dict(with_email[20], emailAddress=with_email[21]["emailAddress"])
    taker["_modified"] += 5
    older = dict(with_email[30], displayName="旧名字", _modified=with_email[30]["_modified"] - 1)
    changed = {taker["userID"]: taker, older["userID"]: older}
    lines = [json.dumps(changed[user["userID"]], ensure_ascii=False).encode()
             if (user := _user(line)) and user["userID"] in changed else line for line in lines]
    # The userID of a line the set operation records, with a space ahead: its own staged key, the same
    # user once parsed (a duplicate of the earlier line, whichever half of the ledger holds that one).
    lines.append(json.dumps(dict(users[40], userID=" " + users[40]["userID"], displayName="again"),
                            ensure_ascii=False).encode())
    (second / "profiles.jsonl.gz").write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    return second


def test_set_based_second_delivery_writes_the_planners_ledger(import_app, export, tmp_path):
    run_import(import_app, *args_for(export, tmp_path / "first.json"))
    db.session.rollback()
    migrated = db.session.scalars(sa.select(LegacyUser.kii_user_id)
                                  .where(LegacyUser.state == MigrationState.pending).limit(5)).all()
    db.session.execute(sa.update(LegacyUser).where(LegacyUser.kii_user_id.in_(migrated)).values(
        state=MigrationState.migrated, password_hash=None, hash_fingerprint=None))
    db.session.commit()
    second = second_delivery(export, tmp_path)

    planned = importer(import_app, second, dry_run=True)   # the planner alone, nothing written
    planned.run()
    expected = records(planned.ledger.engine, planned.run_id)
    real = importer(import_app, second)
    report = real.run()
    got = records(db.engine, real.run_id)

    assert got == expected
    last = len(gzip.decompress((second / "profiles.jsonl.gz").read_bytes()).splitlines())
    assert [r[3:5] for r in got if r[:2] == ("profiles", last)] == [("failed", "duplicate_user_id")]
    with db.engine.connect() as conn:  # the lines proved unchanged are in the compact half, with no claims
        compact = conn.execute(sa.select(sa.func.count()).select_from(UNCHANGED)
                               .where(UNCHANGED.c.run_id == real.run_id)).scalar()
        claimed = conn.execute(sa.select(sa.func.count()).select_from(RECORDS).where(
            RECORDS.c.run_id == real.run_id, RECORDS.c.outcome == "unchanged")).scalar()
    assert compact == report["run"]["unchanged_at_once"] and claimed < compact / 10
    assert "unchanged" in report["run"]["timings_s"]
    assert report["run"]["unchanged_at_once"] > 0.8 * report["profiles"]["input"]
    assert sum(1 for r in got if r[0] == "hashes" and r[3] == "kept") == len(migrated)
    with db.engine.connect() as conn:  # the staged lines go with the run
        assert conn.execute(sa.select(sa.func.count()).select_from(ImportProfile.__table__)).scalar() == 0


def test_the_planner_alone_gives_the_same_ledger(import_app, export, tmp_path):
    """Off (`set_based=False`), every line goes through the planner: the same records again."""
    run_import(import_app, *args_for(export, tmp_path / "first.json"))
    second = second_delivery(export, tmp_path)
    planned = importer(import_app, second, dry_run=True)
    planned.run()
    real = importer(import_app, second, set_based=False)
    report = real.run()
    assert "unchanged" not in report["run"]["timings_s"]
    assert records(db.engine, real.run_id) == records(planned.ledger.engine, planned.run_id)
