"""`identity migration verify` finds what differs between the export, Keycloak and the store."""

from __future__ import annotations

import json

from identity.db import db
from identity.importer.profile import keycloak_id
from identity.legacy.models import LegacyUser
from tests.importer.conftest import run_import


def verify(app, export, tmp_path):
    d = export["dir"]
    result = app.test_cli_runner().invoke(args=[
        "migration", "verify", "--profiles", str(d / "profiles.jsonl"), "--hashes", str(d / "hashes.csv"),
        "--report", str(tmp_path / "verify.json")])
    return result, json.loads((tmp_path / "verify.json").read_text())


def test_clean_import_verifies(import_app, export, tmp_path):
    d = export["dir"]
    run_import(import_app, "--profiles", str(d / "profiles.jsonl"), "--hashes", str(d / "hashes.csv"))
    result, report = verify(import_app, export, tmp_path)
    assert result.exit_code == 0, result.output
    totals = report["totals"]
    assert totals["matched"] == export["totals"]["imported"]
    assert totals["invalid"] == export["totals"]["failed"]
    assert totals["different"] == totals["missing"] == totals["extra"] == 0
    assert report["add_up"]


def test_finds_a_user_deleted_behind_the_importers_back(import_app, import_realm, export, tmp_path, master_admin):
    d = export["dir"]
    run_import(import_app, "--profiles", str(d / "profiles.jsonl"), "--hashes", str(d / "hashes.csv"))
    users = db.session.query(LegacyUser).order_by(LegacyUser.kii_user_id).limit(3).all()
    gone, renamed, rehashed = users[0].kii_user_id, users[1].kii_user_id, users[2].kii_user_id
    master_admin.change_current_realm(import_realm.realm)
    master_admin.delete_user(keycloak_id(import_realm.realm, gone))
    current = master_admin.get_user(keycloak_id(import_realm.realm, renamed))
    master_admin.update_user(keycloak_id(import_realm.realm, renamed), {**current, "enabled": not current["enabled"]})
    users[2].hash_fingerprint = "0" * 64
    db.session.commit()

    result, report = verify(import_app, export, tmp_path)
    assert result.exit_code == 1
    assert report["reasons"]["missing_in_keycloak"]["examples"] == [gone]
    assert report["reasons"]["keycloak_differs"]["examples"] == [renamed]
    assert rehashed in report["reasons"]["hash_differs"]["examples"] or \
        rehashed in report["reasons"].get("hash_missing_in_store", {}).get("examples", [])
    assert report["totals"]["missing"] == 1 and report["totals"]["different"] == 2
    assert f"missing_in_keycloak: 1 (e.g. {gone})" in result.output
