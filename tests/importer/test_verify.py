"""`identity migration verify` finds what differs between the export, Keycloak and the store."""

from __future__ import annotations

import json

import sqlalchemy as sa

from identity.db import db
from identity.importer.profile import keycloak_id
from identity.legacy.models import LegacyUser, MigrationState
from tests.importer.conftest import gen_cutoff, run_import


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


def verify_files(app, tmp_path, profiles, hashes, deleted=None):
    args = ["migration", "verify", "--profiles", str(profiles), "--hashes", str(hashes),
            "--report", str(tmp_path / "verify.json")]
    if deleted:
        args += ["--deleted", str(deleted)]
    result = app.test_cli_runner().invoke(args=args)
    return result, json.loads((tmp_path / "verify.json").read_text())


def test_a_cutoff_delivery_verifies_and_what_needs_no_action_is_counted_apart(import_app, import_realm, export,
                                                                             tmp_path, master_admin):
    """Sign-ups since go-live, deletions and users whose password here wins are counted, not failed."""
    d = export["dir"]
    run_import(import_app, "--profiles", str(d / "profiles.jsonl"), "--hashes", str(d / "hashes.csv"))
    migrated = db.session.scalars(sa.select(LegacyUser).where(LegacyUser.state == MigrationState.pending)).first()
    master_admin.change_current_realm(import_realm.realm)
    master_admin.set_user_password(migrated.keycloak_user_id, "Set-Here-2026!", temporary=False)
    migrated.state, migrated.password_hash, migrated.hash_fingerprint = MigrationState.migrated, None, None
    db.session.commit()
    signed_up = master_admin.create_user({"username": "signed-up-here", "email": "new@example.net", "enabled": True})
    second = tmp_path / "second"
    manifest = gen_cutoff.cutoff(d, second, seed=5, changed=0.05, new=0.02, deleted=0.01, rehashed=0.05,
                                 rehash=(migrated.kii_user_id,))
    files = [second / "profiles.jsonl.gz", second / "hashes.csv.gz"]
    run_import(import_app, "--profiles", str(files[0]), "--hashes", str(files[1]),
               "--deleted", str(second / "deleted.txt"))

    result, report = verify_files(import_app, tmp_path, *files, second / "deleted.txt")
    assert result.exit_code == 0, result.output
    assert report["ok"] and report["add_up"]
    reasons = report["reasons"]
    assert reasons["migrated_password_kept"]["examples"] == [migrated.kii_user_id]
    assert reasons["signed_up_here"] == {**reasons["signed_up_here"], "count": 1, "examples": [signed_up],
                                         "action": False}
    assert reasons["deleted_on_kii"]["count"] == len(manifest["deleted"]) > 0
    assert not any(entry["action"] for entry in reasons.values())
    assert report["totals"]["extra"] == 0 and report["totals"]["signed_up_here"] == 1
    summary = (tmp_path / "verify.md").read_text(encoding="utf-8")
    assert "Nothing needs action." in summary and "`signed_up_here` | 1 |" in summary


def test_each_difference_is_named_with_what_to_do(import_app, import_realm, export, tmp_path, master_admin):
    d = export["dir"]
    run_import(import_app, "--profiles", str(d / "profiles.jsonl"), "--hashes", str(d / "hashes.csv"))
    pending = db.session.scalars(sa.select(LegacyUser).where(LegacyUser.state == MigrationState.pending)
                                 .order_by(LegacyUser.kii_user_id)).all()
    realm = import_realm.realm
    master_admin.change_current_realm(realm)
    expected = {}

    def induce(reason, user, change=None):
        if change:
            change(user)
        expected[reason] = user.kii_user_id

    induce("store_differs", pending[0], lambda u: setattr(u, "disabled", not u.disabled))
    induce("hash_differs", pending[1], lambda u: setattr(u, "hash_fingerprint", "0" * 64))
    induce("hash_missing_in_store", pending[2], lambda u: setattr(u, "password_hash", None))
    induce("migrated_without_password", pending[3], lambda u: setattr(u, "state", MigrationState.migrated))
    master_admin.set_user_password(pending[4].keycloak_user_id, "Set-Here-2026!", temporary=False)
    induce("pending_with_password_here", pending[4])
    user = master_admin.get_user(pending[5].keycloak_user_id)
    master_admin.update_user(pending[5].keycloak_user_id, {**user, "firstName": "x",
                                                           "attributes": {**user["attributes"], "locale": ["fr"]}})
    induce("keycloak_differs", pending[5])
    stray = "00000000-stray-row-no-export"
    db.session.add(LegacyUser(kii_user_id=stray, username="stray-row", state=MigrationState.pending))
    expected["extra_in_store"] = stray
    db.session.commit()
    gone_from_store = pending[6].kii_user_id
    db.session.execute(sa.delete(LegacyUser).where(LegacyUser.kii_user_id == gone_from_store))
    db.session.commit()
    expected["missing_in_store"] = gone_from_store
    # The delivery leaves out one user, and lists one as deleted whom nobody disabled.
    left_out, deleted = pending[7], pending[8]
    lines = [line for line in (d / "profiles.jsonl").read_bytes().splitlines(keepends=True)
             if left_out.kii_user_id.encode() not in line and deleted.kii_user_id.encode() not in line]
    (tmp_path / "profiles.jsonl").write_bytes(b"".join(lines))
    (tmp_path / "deleted.txt").write_text(deleted.kii_user_id + "\n")
    expected["not_in_this_delivery"] = left_out.kii_user_id
    expected["deleted_still_enabled"] = deleted.kii_user_id

    result, report = verify_files(import_app, tmp_path, tmp_path / "profiles.jsonl", d / "hashes.csv",
                                  tmp_path / "deleted.txt")
    assert result.exit_code == 1
    found = {name: entry["examples"] for name, entry in report["reasons"].items()}
    # The user the store now says migrated keeps their password over the delivery's hash: for the record.
    assert found == {**{name: [uid] for name, uid in expected.items()},
                     "migrated_password_kept": [pending[3].kii_user_id]}, found
    assert all(entry["action"] and entry["do"] for name, entry in report["reasons"].items()
               if name != "migrated_password_kept")
    assert report["add_up"] and not report["ok"]
    summary = (tmp_path / "verify.md").read_text(encoding="utf-8")
    assert "Action needed" in summary and "`not_in_this_delivery` | 1 |" in summary


def test_a_second_verify_parses_only_lines_it_has_not_seen_and_still_sees_every_change(
        import_app, import_realm, export, tmp_path, master_admin, monkeypatch):
    """What verify worked out of a line is remembered by the line's bytes (expected.py): the next verify of
    the same delivery parses only what it has not seen, and a remembered line hides no change made since
    in Keycloak, nor a deletion."""
    from identity.importer import expected

    d = export["dir"]
    run_import(import_app, "--profiles", str(d / "profiles.jsonl"), "--hashes", str(d / "hashes.csv"))
    result, first = verify(import_app, export, tmp_path)
    assert result.exit_code == 0, result.output
    valid = first["totals"]["input"] - first["totals"]["invalid"]
    assert first["lines_worked_out"] == {"remembered": 0, "parsed": first["totals"]["input"]}

    users = db.session.scalars(sa.select(LegacyUser).where(LegacyUser.state == MigrationState.pending)
                               .order_by(LegacyUser.kii_user_id)).all()
    changed, deleted = users[0], users[1]
    master_admin.change_current_realm(import_realm.realm)
    current = master_admin.get_user(changed.keycloak_user_id)
    master_admin.update_user(changed.keycloak_user_id, {**current, "email": "changed-here@example.net"})
    (tmp_path / "deleted.txt").write_text(deleted.kii_user_id + "\n")
    result, second = verify_files(import_app, tmp_path, d / "profiles.jsonl", d / "hashes.csv",
                                  tmp_path / "deleted.txt")
    assert result.exit_code == 1
    # The deleted user's line is worked out again: they are expected disabled now.
    assert second["lines_worked_out"] == {"remembered": valid - 1, "parsed": second["totals"]["input"] - valid + 1}
    assert second["reasons"]["keycloak_differs"]["examples"] == sorted(
        [changed.kii_user_id, deleted.kii_user_id], key=lambda uid: _line_of(d, uid))
    assert second["reasons"]["deleted_user_has_hash"]["examples"] == [deleted.kii_user_id]
    assert {k: second["totals"][k] for k in ("input", "invalid")} == {k: first["totals"][k] for k in ("input", "invalid")}
    with db.engine.connect() as conn:  # what is remembered of the deleted user's line is still the line's own
        assert conn.execute(sa.select(expected.TABLE.c.disabled).where(
            expected.TABLE.c.kii_user_id == deleted.kii_user_id)).scalar() is False

    monkeypatch.setattr(expected, "VERSION", expected.VERSION + 1)
    result, third = verify(import_app, export, tmp_path)
    assert third["lines_worked_out"] == {"remembered": 0, "parsed": third["totals"]["input"]}
    assert third["reasons"]["keycloak_differs"]["examples"] == [changed.kii_user_id]


def _line_of(d, kii_user_id: str) -> int:
    lines = (d / "profiles.jsonl").read_bytes().splitlines()
    return next(n for n, line in enumerate(lines) if kii_user_id.encode() in line)


def test_a_later_hash_line_the_collation_gives_an_earlier_lines_user_is_left_out(import_app, export, tmp_path):
    """The import refuses it (`duplicate_hash_row`: MariaDB's collations take "AB" for "ab"); verify compares the
    first line of each userID as the database sees them, once, and never the later one."""
    d = export["dir"]
    lines = (d / "hashes.csv").read_text(encoding="utf-8").splitlines()
    first = next(line for line in lines[1:] if any(c.isalpha() for c in line.split(",")[0]))
    user_id = first.split(",")[0]
    lines.append(f"{user_id.upper()},{'0' * 64},")
    (tmp_path / "hashes.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_import(import_app, "--profiles", str(d / "profiles.jsonl"), "--hashes", str(tmp_path / "hashes.csv"))

    result, report = verify_files(import_app, tmp_path, d / "profiles.jsonl", tmp_path / "hashes.csv")
    assert result.exit_code == 0, result.output
    totals = report["totals"]
    assert totals["matched"] == export["totals"]["imported"]
    assert totals["different"] == totals["missing"] == 0
    assert report["add_up"]


def test_a_difference_on_the_last_lines_is_found_when_empty_lines_come_before_them(
        import_app, import_realm, export, tmp_path, master_admin):
    """An empty line has a number and no row: the comparison's ranges of lines reach the last number."""
    d = export["dir"]
    run_import(import_app, "--profiles", str(d / "profiles.jsonl"), "--hashes", str(d / "hashes.csv"))
    lines = (d / "profiles.jsonl").read_bytes().splitlines()
    last = json.loads(lines[-1])["userID"]
    master_admin.change_current_realm(import_realm.realm)
    master_admin.delete_user(keycloak_id(import_realm.realm, last))
    padded = tmp_path / "padded.jsonl"
    padded.write_bytes(b"\n" * 50 + b"\n".join(lines) + b"\n")

    result, report = verify_files(import_app, tmp_path, padded, d / "hashes.csv")
    assert result.exit_code == 1
    assert report["reasons"]["missing_in_keycloak"]["examples"] == [last]
