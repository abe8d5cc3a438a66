"""`identity import-profiles` against the real Keycloak and store, on generated exports."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from identity.db import db
from identity.importer.models import ImportRecord
from identity.importer.profile import keycloak_id
from identity.legacy.models import LegacyUser, MigrationState
from tests.importer.conftest import read_report, run_import
from tests.secrets_scan import keep


def args_for(export, report: Path, *extra: str) -> list[str]:
    d = export["dir"]
    return ["--profiles", str(d / "profiles.jsonl"), "--hashes", str(d / "hashes.csv"), "--report", str(report),
            "--batch-size", "50", *extra]


def keycloak_users(admin, realm_name: str) -> list[dict]:
    admin.change_current_realm(realm_name)
    return [u for u in admin.get_users({"briefRepresentation": False})
            if "kii_user_id" in (u.get("attributes") or {})]


def store_snapshot() -> list[tuple]:
    db.session.rollback()
    return [(u.kii_user_id, u.keycloak_user_id, u.username, u.email, u.phone_number, u.password_hash,
             u.state.value, u.disabled, u.kii_modified)
            for u in db.session.scalars(sa.select(LegacyUser).order_by(LegacyUser.kii_user_id))]


def ledger() -> dict:
    db.session.rollback()
    return {(r.source, r.line_no): (r.outcome, r.reason) for r in db.session.scalars(sa.select(ImportRecord))}


def test_report_accounts_for_every_line_and_matches_the_export(import_app, import_realm, export, tmp_path,
                                                               master_admin):
    report_path = tmp_path / "report.json"
    output = run_import(import_app, *args_for(export, report_path)).output
    report = read_report(report_path)

    profiles = report["profiles"]
    assert profiles["input"] == export["totals"]["input"]
    assert profiles["imported"] + profiles["updated"] + profiles["unchanged"] + profiles["failed"] == profiles["input"]
    assert profiles["imported"] == export["totals"]["imported"]
    assert profiles["failed"] == export["totals"]["failed"]
    assert all(report["check"].values())
    hashes = report["hashes"]
    assert hashes["input"] == sum(1 for _ in open(export["dir"] / "hashes.csv")) - 1

    # Every line with a problem carries exactly the expected outcome and reason...
    rows = ledger()
    expected = {(c["source"], c["line"]): (c["outcome"], c["reason"]) for c in export["cases"]}
    for key, value in expected.items():
        assert rows[key] == value, key
    # ...and no other line has a reason or a failure.
    for key, (outcome, reason) in rows.items():
        if key not in expected:
            assert outcome in ("imported", "stored") and reason is None, (key, outcome, reason)
    # Each reason of the spec appears in the report, with examples that are user ids, not secrets.
    reasons = set(report["failures"]) | set(report["warnings"]) | set(report["hashes"]["failures"])
    for reason in ("not_json", "not_utf8", "line_too_long", "missing_user_id", "duplicate_user_id",
                   "login_name_case_collision", "invalid_email", "invalid_phone", "hash_for_unknown_user",
                   "missing_hash", "unknown_hash_format", "malformed_hash"):
        assert reason in reasons, reason
    text = report_path.read_text() + report_path.with_suffix(".md").read_text() + output
    for line in open(export["dir"] / "hashes.csv").readlines()[1:20]:
        assert line.split(",")[1] not in text
    assert export["hash_key"] not in text

    # Keycloak holds exactly the imported users, with their attributes, enabled as Kii says, no password.
    users = keycloak_users(master_admin, import_realm.realm)
    assert len(users) == profiles["imported"]
    profiles_by_id = {}
    for line in open(export["dir"] / "profiles.jsonl", "rb"):
        try:
            record = json.loads(line)
            profiles_by_id.setdefault(record.get("userID"), record)
        except ValueError:
            pass
    for user in users[:40]:
        kii_id = user["attributes"]["kii_user_id"][0]
        record = profiles_by_id[kii_id]
        assert user["id"] == keycloak_id(import_realm.realm, kii_id)
        assert user["enabled"] == (str(record.get("_disabled")).lower() != "true")
        assert user["attributes"]["custom.deviceModel"] == [record["deviceModel"]]
        assert user["attributes"]["name"] == [record["displayName"]]
        assert master_admin.get_credentials(user["id"]) == []

    # The store: pending with a hash when usable, reset_required otherwise.
    states = Counter(u[6] for u in store_snapshot())
    assert states["pending"] == report["hashes"]["stored"]
    assert states["pending"] + states["reset_required"] == profiles["imported"]
    assert (tmp_path / "report.md").read_text().count("every input line is accounted for") == 1


def test_rerun_changes_nothing(import_app, import_realm, export, tmp_path, master_admin):
    run_import(import_app, *args_for(export, tmp_path / "first.json"))
    first_store, first_keycloak = store_snapshot(), keycloak_users(master_admin, import_realm.realm)

    # Same files, same run: every line is already done, and the summary and report say so.
    assert read_report(tmp_path / "first.json")["run"]["already_complete"] is False
    again = run_import(import_app, *args_for(export, tmp_path / "again.json"))
    assert "already complete, nothing written" in again.output
    assert read_report(tmp_path / "again.json")["run"]["already_complete"] is True
    assert "already complete: nothing was written now" in (tmp_path / "again.md").read_text()
    assert read_report(tmp_path / "again.json")["profiles"] == read_report(tmp_path / "first.json")["profiles"]
    assert store_snapshot() == first_store

    # A new delivery of the same content (new run): nothing changes, everything is "unchanged".
    copy = tmp_path / "copy"
    shutil.copytree(export["dir"], copy)
    run_import(import_app, "--profiles", str(copy / "profiles.jsonl"), "--hashes", str(copy / "hashes.csv"),
               "--report", str(tmp_path / "third.json"))
    third = read_report(tmp_path / "third.json")["profiles"]
    assert third["imported"] == 0 and third["updated"] == 0
    assert third["unchanged"] == export["totals"]["imported"]
    assert store_snapshot() == first_store
    assert keycloak_users(master_admin, import_realm.realm) == first_keycloak
    # One "imported" audit record per user, however often the import ran.
    from identity.audit import AuditEvent

    imported = db.session.scalars(sa.select(AuditEvent.kii_user_id).where(AuditEvent.event == "imported")).all()
    assert len(imported) == len(set(imported)) == export["totals"]["imported"]


def test_dry_run_writes_nothing(import_app, import_realm, export, tmp_path, master_admin):
    run_import(import_app, *args_for(export, tmp_path / "dry.json"), "--dry-run")
    report = read_report(tmp_path / "dry.json")
    assert report["run"]["dry_run"] is True
    assert report["profiles"]["imported"] == export["totals"]["imported"]
    assert report["profiles"]["failed"] == export["totals"]["failed"]
    assert store_snapshot() == []
    assert ledger() == {}
    assert keycloak_users(master_admin, import_realm.realm) == []


def test_killed_with_sigkill_and_rerun_ends_as_an_uninterrupted_run(import_app, import_realm, export, tmp_path,
                                                                      master_admin):
    env = {**os.environ, **import_app.config["ENV_FOR_SUBPROCESS"]}
    identity = str(Path(sys.executable).parent / "identity")
    argv = [identity, "import-profiles", *args_for(export, tmp_path / "report.json"), "--batch-size", "20"]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while True:
        db.session.rollback()
        done = db.session.execute(sa.select(sa.func.count()).select_from(LegacyUser)).scalar_one()
        if done >= 60:
            break
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    keep("import-profiles (killed)", *process.communicate())
    assert store_snapshot(), "the kill must land mid-run"
    assert len(store_snapshot()) < export["totals"]["imported"], "the kill must land mid-run"

    rerun = subprocess.run(argv, env=env, capture_output=True, timeout=600)
    keep("import-profiles (rerun)", rerun.stdout, rerun.stderr)
    assert rerun.returncode == 0, rerun.stderr.decode()[-3000:]
    report = read_report(tmp_path / "report.json")
    # The totals an uninterrupted run reports, no duplicate, no lost user.
    assert report["profiles"]["imported"] == export["totals"]["imported"]
    assert report["profiles"]["failed"] == export["totals"]["failed"]
    assert report["profiles"]["input"] == export["totals"]["input"]
    assert all(report["check"].values())
    users = keycloak_users(master_admin, import_realm.realm)
    assert len(users) == len({u["id"] for u in users}) == export["totals"]["imported"]
    assert len(store_snapshot()) == export["totals"]["imported"]
    rows = ledger()
    for case in export["cases"]:
        assert rows[(case["source"], case["line"])] == (case["outcome"], case["reason"])


def test_second_delivery(import_app, import_realm, export, tmp_path, master_admin):
    run_import(import_app, *args_for(export, tmp_path / "first.json"))
    db.session.rollback()
    pending = db.session.scalars(sa.select(LegacyUser).where(LegacyUser.state == MigrationState.pending)
                                 .order_by(LegacyUser.kii_user_id).limit(3)).all()
    changed, rehashed, signed_in = (u.kii_user_id for u in pending)
    # One user already signed in here: the service migrated them.
    db.session.execute(sa.update(LegacyUser).where(LegacyUser.kii_user_id == signed_in).values(
        state=MigrationState.migrated, password_hash=None, hash_fingerprint=None))
    db.session.commit()
    old_hash = db.session.get(LegacyUser, rehashed).password_hash
    # A user whose hash was missing from the first delivery: reset_required until the second brings it.
    has_password = set()
    for text in (export["dir"] / "profiles.jsonl").read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(text)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("_hasPassword", True) is True:
            has_password.add(record.get("userID"))
    hashless = next(u.kii_user_id for u in db.session.scalars(
        sa.select(LegacyUser).where(LegacyUser.state == MigrationState.reset_required)) if u.kii_user_id in has_password)

    second = tmp_path / "second"
    second.mkdir()
    deleted_id = next(u for u in store_snapshot() if u[0] not in (changed, rehashed, signed_in))[0]
    missing_id = None
    with open(export["dir"] / "profiles.jsonl", "rb") as src, open(second / "profiles.jsonl", "wb") as dst:
        for line in src:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("userID") == changed:
                record["displayName"] = "新名字"
                record["_modified"] += 1000
            if missing_id is None and record.get("userID") not in (changed, rehashed, signed_in, deleted_id) \
                    and record.get("loginName") and db.session.get(LegacyUser, record["userID"]):
                missing_id = record["userID"]  # left out of the second delivery
                continue
            dst.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
    with open(export["dir"] / "hashes.csv") as src, open(second / "hashes.csv", "w") as dst:
        for line in src:
            user_id = line.split(",")[0]
            if user_id in (rehashed, signed_in):
                line = f"{user_id},{'ab' * 32},\n"  # a password changed on Kii between the deliveries
            if user_id != hashless:
                dst.write(line)
        dst.write(f"{hashless},{'cd' * 32},\n")
    (second / "deleted.txt").write_text(deleted_id + "\n" + "no-such-user\n")

    run_import(import_app, "--profiles", str(second / "profiles.jsonl"), "--hashes", str(second / "hashes.csv"),
               "--deleted", str(second / "deleted.txt"), "--report", str(tmp_path / "second.json"))
    report = read_report(tmp_path / "second.json")
    db.session.rollback()

    assert report["profiles"]["updated"] == 3  # the renamed user, the re-hashed one, the one now with a hash
    assert report["hashes"]["kept"] == 1       # the migrated user keeps the password they signed in with
    assert db.session.get(LegacyUser, signed_in).state == MigrationState.migrated
    assert db.session.get(LegacyUser, signed_in).password_hash is None
    assert db.session.get(LegacyUser, rehashed).password_hash == "ab" * 32 != old_hash
    master_admin.change_current_realm(import_realm.realm)
    assert master_admin.get_user(keycloak_id(import_realm.realm, changed))["attributes"]["name"] == ["新名字"]
    # The console follows the store: the user with a hash now is pending there too.
    assert db.session.get(LegacyUser, hashless).state == MigrationState.pending
    assert master_admin.get_user(keycloak_id(import_realm.realm, hashless))["attributes"]["migration_state"] == \
        ["pending"]
    assert master_admin.get_user(keycloak_id(import_realm.realm, rehashed))["attributes"]["migration_state"] == \
        ["pending"]

    gone = db.session.get(LegacyUser, deleted_id)
    assert gone.disabled and gone.password_hash is None
    assert master_admin.get_user(keycloak_id(import_realm.realm, deleted_id))["enabled"] is False
    assert report["deleted"]["disabled"] == 1
    assert report["deleted"]["failures"]["deleted_unknown_user"]["count"] == 1

    assert report["missing_from_export"] == {"count": 1, "examples": [missing_id]}
    assert db.session.get(LegacyUser, missing_id) is not None  # reported, not deleted
    # A dry run's ledger is a file apart, so its report walks the store instead: the same answer.
    run_import(import_app, "--profiles", str(second / "profiles.jsonl"), "--report", str(tmp_path / "dry.json"),
               "--dry-run")
    assert read_report(tmp_path / "dry.json")["missing_from_export"] == report["missing_from_export"]
    assert all(report["check"].values())


def test_gzip_input_empty_file_and_truncated_stream(import_app, export, tmp_path):
    d = export["dir"]
    gz = tmp_path / "profiles.jsonl.gz"
    gz.write_bytes(gzip.compress((d / "profiles.jsonl").read_bytes()))
    truncated = tmp_path / "truncated.jsonl.gz"
    truncated.write_bytes(gz.read_bytes()[: gz.stat().st_size // 2])
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")

    run_import(import_app, "--profiles", str(truncated), "--report", str(tmp_path / "t.json"), "--dry-run")
    report = read_report(tmp_path / "t.json")
    assert report["failures"]["truncated_gzip"]["count"] == 1
    assert report["profiles"]["imported"] > 0 and all(report["check"].values())

    run_import(import_app, "--profiles", str(empty), "--report", str(tmp_path / "e.json"), "--dry-run")
    report = read_report(tmp_path / "e.json")
    assert report["profiles"] == {"input": 1, "imported": 0, "updated": 0, "unchanged": 0, "failed": 1}
    assert report["failures"]["empty_file"]["count"] == 1

    run_import(import_app, "--profiles", str(gz), "--hashes", str(d / "hashes.csv"),
               "--report", str(tmp_path / "g.json"), "--dry-run")
    assert read_report(tmp_path / "g.json")["profiles"]["imported"] == export["totals"]["imported"]


def test_conflict_with_an_existing_keycloak_user(import_app, import_realm, export, tmp_path, master_admin):
    """Someone else in Keycloak already has a user's email: that user fails, the batch goes on."""
    expected_ok = {c["line"] for c in export["cases"] if c["source"] == "profiles"}
    first = None
    for number, line in enumerate(open(export["dir"] / "profiles.jsonl", "rb"), start=1):
        record = json.loads(line) if number not in expected_ok else {}
        if record.get("emailAddress") and record.get("loginName"):
            first = record
            break
    master_admin.change_current_realm(import_realm.realm)
    master_admin.create_user({"username": "someone-else", "email": first["emailAddress"].lower(), "enabled": True})
    run_import(import_app, *args_for(export, tmp_path / "report.json"))
    report = read_report(tmp_path / "report.json")
    assert report["failures"]["keycloak_conflict"]["examples"] == [first["userID"]]
    assert report["profiles"]["imported"] == export["totals"]["imported"] - 1
    assert all(report["check"].values())
    db.session.rollback()
    assert db.session.get(LegacyUser, first["userID"]) is None


def test_bundled_sample_matches_its_manifest(import_app, tmp_path):
    """config/sample (what `make run` imports) still says what its manifest says."""
    from tests.conftest import ROOT

    sample = ROOT / "config" / "sample"
    manifest = json.loads((sample / "manifest.json").read_text())
    run_import(import_app, "--profiles", str(sample / "profiles.jsonl.gz"), "--hashes", str(sample / "hashes.csv.gz"),
               "--report", str(tmp_path / "sample.json"), "--dry-run")
    report = read_report(tmp_path / "sample.json")
    assert report["profiles"]["imported"] == manifest["totals"]["imported"]
    assert report["profiles"]["failed"] == manifest["totals"]["failed"]
    assert report["warnings"] or report["failures"]


def test_a_username_held_by_another_keycloak_user_is_a_conflict(import_app, import_realm, export, tmp_path,
                                                                 master_admin):
    """The provider refuses it (username_taken): the line fails, and nothing of that user is written."""
    expected_bad = {c["line"] for c in export["cases"] if c["source"] == "profiles"}
    record = next(json.loads(line) for n, line in enumerate(open(export["dir"] / "profiles.jsonl", "rb"), 1)
                  if n not in expected_bad and json.loads(line).get("loginName"))
    master_admin.change_current_realm(import_realm.realm)
    master_admin.create_user({"username": record["loginName"].lower(), "enabled": True})
    run_import(import_app, *args_for(export, tmp_path / "report.json"))
    report = read_report(tmp_path / "report.json")
    assert report["failures"]["keycloak_conflict"]["examples"] == [record["userID"]]


def test_every_imported_user_shows_its_migration_state_in_keycloak(import_app, import_realm, export, tmp_path,
                                                                   master_admin):
    run_import(import_app, *args_for(export, tmp_path / "report.json"))
    with import_app.app_context():
        states = {kii: state for kii, _, _, _, _, _, state, _, _ in store_snapshot()}
    users = keycloak_users(master_admin, import_realm.realm)
    assert len(users) == len(states) and {"pending", "reset_required"} <= set(states.values())
    for user in users:
        attributes = user["attributes"]
        # The console's view of the store, read-only: the same state, and when it was set.
        assert attributes["migration_state"] == [states[attributes["kii_user_id"][0]]], user["username"]
        assert attributes["migration_state_changed_at"][0].endswith("Z")


def test_a_deleted_user_stays_deleted(import_app, import_realm, export, tmp_path, master_admin):
    """A user named in `--deleted` is never brought back: not by the same delivery imported again (which
    writes nothing), not by a later one listing them enabled with a new hash; nor is a user who deleted
    their account here. The export's line is reported (`deleted_user_in_export`)."""
    from identity.audit import AuditEvent

    run_import(import_app, *args_for(export, tmp_path / "first.json"))
    db.session.rollback()
    deleted_id, self_deleted = db.session.scalars(
        sa.select(LegacyUser.kii_user_id).where(LegacyUser.state == MigrationState.pending,
                                                LegacyUser.disabled.is_(False))
        .order_by(LegacyUser.kii_user_id).limit(2)).all()

    def delivery(name: str, deleted: bool = True, **changes) -> list[str]:
        """A copy of the export (a new run) with `changes` to the deleted user's profile and hash."""
        copy = tmp_path / name
        copy.mkdir()
        with open(export["dir"] / "profiles.jsonl", "rb") as src, open(copy / "profiles.jsonl", "wb") as dst:
            for line in src:
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if isinstance(record, dict) and record.get("userID") == deleted_id and changes:
                    record.update(_modified=record["_modified"] + 1000, _disabled=False)
                    line = json.dumps(record, ensure_ascii=False).encode() + b"\n"
                dst.write(line)
        with open(export["dir"] / "hashes.csv") as src, open(copy / "hashes.csv", "w") as dst:
            for line in src:
                if changes.get("new_hash") and line.split(",")[0] == deleted_id:
                    line = f"{deleted_id},{'ef' * 32},\n"
                dst.write(line)
        args = ["--profiles", str(copy / "profiles.jsonl"), "--hashes", str(copy / "hashes.csv"),
                "--report", str(tmp_path / f"{name}.json")]
        if deleted:
            (copy / "deleted.txt").write_text(deleted_id + "\n")
            args += ["--deleted", str(copy / "deleted.txt")]
        return args

    def state():
        db.session.rollback()
        audit = db.session.execute(sa.select(sa.func.count()).select_from(AuditEvent)).scalar_one()
        updated = {u.kii_user_id: u.updated_at for u in db.session.scalars(sa.select(LegacyUser))}
        return store_snapshot(), updated, audit, keycloak_users(master_admin, import_realm.realm)

    def gone_everywhere():
        db.session.rollback()
        row = db.session.get(LegacyUser, deleted_id)
        assert row.disabled and row.password_hash is None and row.state == MigrationState.reset_required
        master_admin.change_current_realm(import_realm.realm)
        assert master_admin.get_user(keycloak_id(import_realm.realm, deleted_id))["enabled"] is False

    run_import(import_app, *delivery("second"))
    assert read_report(tmp_path / "second.json")["deleted"]["disabled"] == 1
    gone_everywhere()
    before = state()

    # The same delivery again (a new run): nothing is written; the listed deleted user is reported.
    run_import(import_app, *delivery("again"))
    again = read_report(tmp_path / "again.json")
    assert state() == before
    assert (again["profiles"]["imported"], again["profiles"]["updated"]) == (0, 0)
    assert again["failures"]["deleted_user_in_export"] == {"count": 1, "examples": [deleted_id]}
    assert again["hashes"]["failures"]["deleted_user_in_export"] == {"count": 1, "examples": [deleted_id]}
    assert (again["hashes"]["stored"], again["deleted"]["disabled"], again["deleted"]["unchanged"]) == (0, 0, 1)
    assert all(again["check"].values())

    # The user deletes their account here (DeleteUser): the service forgets them, Keycloak too.
    master_admin.change_current_realm(import_realm.realm)
    import_app.extensions["cognito"].service.migration.forget_user(keycloak_id(import_realm.realm, self_deleted))
    master_admin.delete_user(keycloak_id(import_realm.realm, self_deleted))

    # A later delivery, without --deleted, lists the deleted user enabled, newer, with a new hash.
    run_import(import_app, *delivery("later", deleted=False, new_hash=True))
    later = read_report(tmp_path / "later.json")
    gone_everywhere()
    db.session.rollback()
    assert db.session.get(LegacyUser, self_deleted) is None
    users = {u["attributes"]["kii_user_id"][0] for u in keycloak_users(master_admin, import_realm.realm)}
    assert self_deleted not in users
    assert later["failures"]["deleted_user_in_export"] == {"count": 2, "examples": sorted([deleted_id, self_deleted],
                                                                                         key=line_of(export))}
    assert (later["profiles"]["imported"], later["profiles"]["updated"]) == (0, 0)
    assert all(later["check"].values())


def line_of(export):
    """Sort key: a userID's line number in the export's profiles (the report lists examples in file order)."""
    numbers = {}
    for number, line in enumerate(open(export["dir"] / "profiles.jsonl", "rb"), start=1):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            numbers.setdefault(record.get("userID"), number)
    return lambda user_id: numbers[user_id]
