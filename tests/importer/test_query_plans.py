"""Every statement the importer, the sign-in path and `migration verify` send to the store, checked with the
database's own plan: none reads a table that grows with the users without an index it could use. The
statements are the real ones, caught as they go out (SQLAlchemy's cursor events) during an import, sign-ins
(first login, wrong password, unknown name) and a verify; then each is explained with its parameters
(MariaDB's EXPLAIN in CI, SQLite's EXPLAIN QUERY PLAN elsewhere). The index the old system went live
without would fail here. Verify's reconciliation, whose statements read its scratch tables (`verify_*`),
reads every user by design, in one pass; its per-user lookups are the ones checked."""

from __future__ import annotations

import csv
import re
import uuid
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from identity import audit
from identity.db import IN_CHUNK, chunks, db
from identity.importer import facts, report
from identity.importer.ledger import RECORDS, Ledger
from identity.legacy.models import utcnow
from identity.legacy.store import USERS, LegacyStore
from tests.importer.conftest import gen_cutoff
from tests.importer.test_import import args_for, run_import
from tests.importer.test_verify import verify

# Tables whose rows grow with the users (or their attempts): a scan of one is a cut-over night outage.
GROWING = {"legacy_users", "import_records", "import_hashes", "audit_events", "verification_codes",
           "code_failures", "client_failures", "srp_verifiers", "srp_spent_challenges", "pending_software_tokens"}
# Statements that read: an INSERT ... SELECT too (the import's unchanged lines are recorded by one).
READS = re.compile(r"^\s*(SELECT|UPDATE|DELETE|INSERT\b.*\bSELECT)\b", re.I | re.S)
SCRATCH = re.compile(r"\bverify_[0-9a-f]{8}_")


@contextmanager
def caught(engine: sa.Engine):
    statements: dict[str, object] = {}

    def before(conn, cursor, statement, parameters, context, executemany):
        if not executemany and READS.match(statement) and not SCRATCH.search(statement):
            statements.setdefault(statement, parameters)

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


def scans(engine: sa.Engine, statement: str, parameters) -> list[str]:
    """The growing tables this statement would read whole, with no index to use."""
    with engine.connect() as conn:
        if engine.dialect.name == "mysql":
            rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).mappings().all()
            # An INSERT's own target is named too (with nothing to read): only what is read counts.
            return [r["table"] for r in rows if r["table"] in GROWING and r["type"] == "ALL" and not r["possible_keys"]
                    and r["select_type"] != "INSERT"]
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        found = []
        for row in rows:
            detail = row[-1]
            match = re.match(r"SCAN (\w+)", detail)
            if match and match.group(1) in GROWING and "INDEX" not in detail:
                found.append(match.group(1))
        return found


def test_no_statement_scans_a_growing_table(import_app, export, tmp_path):
    engine = db.engine
    samples = list(csv.DictReader(open(export["dir"] / "passwords.csv", encoding="utf-8")))
    deleted = set((export["dir"] / "deleted.txt").read_text().split())
    signed_in = [s for s in samples if s["disabled"] == "false" and s["loginName"] and s["userID"] not in deleted][:2]
    # An address of its own: the suite's other refusals from 127.0.0.1 count in the same database.
    client = import_app.test_client()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.61"

    def initiate(username: str, password: str):
        answer = client.post("/", json={"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "mobile",
                                        "AuthParameters": {"USERNAME": username, "PASSWORD": password}},
                             headers={"X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth",
                                      "Content-Type": "application/x-amz-json-1.1"})
        return answer.status_code, answer.get_json(force=True).get("__type")

    with caught(engine) as statements:
        run_import(import_app, *args_for(export, tmp_path / "report.json"), "--deleted",
                   str(export["dir"] / "deleted.txt"))
        for sample in signed_in:
            assert initiate(sample["loginName"], sample["password"] + "-wrong") == (400, "NotAuthorizedException")
            assert initiate(sample["loginName"], sample["password"]) == (200, None)   # the first login
            assert initiate(sample["email"] or sample["loginName"], sample["password"]) == (200, None)
        assert initiate("nobody-at-all", "Some-Password-1") == (400, "NotAuthorizedException")
        import_app.test_cli_runner().invoke(args=["migration", "verify", "--profiles",
                                                  str(export["dir"] / "profiles.jsonl")])
        # A cut-off delivery: its unchanged lines are recorded by the set operation, then verified.
        second = tmp_path / "second"
        gen_cutoff.cutoff(export["dir"], second, seed=5)
        files = ["--profiles", str(second / "profiles.jsonl.gz"), "--hashes", str(second / "hashes.csv.gz"),
                 "--deleted", str(second / "deleted.txt")]
        run_import(import_app, *files, "--report", str(tmp_path / "second.json"))
        import_app.test_cli_runner().invoke(args=["migration", "verify", *files])
    assert len(statements) > 20   # the paths ran, and were caught
    assert any(s.lstrip().upper().startswith("INSERT") for s in statements)   # the set operation's among them
    found = {statement: tables for statement, parameters in statements.items()
             if (tables := scans(engine, statement, parameters))}
    assert not found, "\n\n".join(f"{tables}: {statement}" for statement, tables in found.items())


RUN_ROWS = 2000  # a run's records at which MariaDB's statistics made it read the whole run for a long IN list
GREW = {"import_records", "audit_events"}  # (the store is looked up by unique keys, which it estimates right)


def test_a_batch_lookup_reads_no_more_rows_than_it_asks_about(app, database_url):
    """The planner's lookups for a batch (facts.gather) and the report's, against a run that has grown:
    each reads the rows of the users it names, not every record of the run nor the whole audit trail.
    (Its IN lists of more values than MariaDB looks up one by one read the whole run here.)"""
    if not database_url.startswith("mysql"):
        pytest.skip("the optimizer's choice for a long IN list is MariaDB's")
    engine, run_id = sa.create_engine(database_url), f"plan-{uuid.uuid4().hex[:12]}"
    ids = [str(uuid.uuid4()) for _ in range(RUN_ROWS)]
    with engine.begin() as conn:
        conn.execute(RECORDS.insert(), [
            {"run_id": run_id, "source": "profiles", "line_no": n, "kii_user_id": kii, "outcome": "imported",
             "flags": 0, "username": f"u{n}-{run_id}", "email": f"u{n}@{run_id}.example", "phone_number": None}
            for n, kii in enumerate(ids)])
        conn.execute(audit.TABLE.insert(), [{"at": utcnow(), "event": "imported", "kii_user_id": kii} for kii in ids])
        conn.execute(USERS.insert(), [{"kii_user_id": kii} for kii in ids[:2 * IN_CHUNK]])  # for the report to ask
        conn.exec_driver_sql("ANALYZE TABLE import_records, audit_events")
    asked = [str(uuid.uuid4()) for _ in range(5 * IN_CHUNK)]   # a batch of users the run has not seen yet
    users = [SimpleNamespace(kii_user_id=kii, username=kii, email=f"{kii}@example.com", phone_number=None)
             for kii in asked]
    ledger = Ledger(engine, run_id)
    try:
        with caught(engine) as statements:
            facts.gather(users, ledger, LegacyStore(engine))
            report._missing_from_export(engine, engine, run_id)
        assert len(statements) >= 6   # the ledger's, the store's and the audit trail's lookups, and the report's
        read = {}
        with engine.connect() as conn:
            for statement, parameters in statements.items():
                for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters).mappings():
                    if row["table"] in GREW and int(row["rows"] or 0) > IN_CHUNK:
                        read[statement] = (row["table"], row["type"], row["key"], row["rows"])
        assert not read, "\n\n".join(f"{plan}: {statement}" for statement, plan in read.items())
    finally:
        with engine.begin() as conn:
            conn.execute(RECORDS.delete().where(RECORDS.c.run_id == run_id))
            for chunk in chunks(ids):
                conn.execute(audit.TABLE.delete().where(audit.TABLE.c.kii_user_id.in_(chunk)))
                conn.execute(USERS.delete().where(USERS.c.kii_user_id.in_(chunk)))
        engine.dispose()


# The tables the night's set operations join, and verify's scratch tables: InnoDB recounts a table in the
# background some time after a tenth of it changed, and a server restarted before that plans with the
# counts it last saved. On the rehearsal's state, restored from a dump and restarted, `verified_lines`
# was counted empty and MariaDB scanned it whole in a join buffer for each of 200,000 lines.
JOINED = re.compile(r"\b(verified_lines|legacy_users|import_records|import_unchanged|import_hashes|import_profiles"
                    r"|audit_events"
                    r"|verify_[0-9a-f]{8}_[a-z]+)\b")
JOINS = re.compile(r"^\s*(INSERT\b.*\bSELECT|SELECT)\b.*\bJOIN\b", re.I | re.S)
ANALYZE = re.compile(r"^\s*ANALYZE TABLE\b", re.I)


def test_a_set_operation_joins_only_tables_counted_during_its_run(import_app, export, tmp_path, database_url):
    """A cut-off import and its verify: every table a join reads was counted (ANALYZE TABLE) earlier in
    the same run, so that no join is planned on counts from before the table was filled. (A restarted
    server's stale counts cannot be made in a test; that the counts are fresh when the join is planned
    can be checked.) And none is planned to read a table whole for each row of another."""
    if not database_url.startswith("mysql"):
        pytest.skip("InnoDB's statistics and MariaDB's join buffer")
    engine = db.engine
    d = export["dir"]
    run_import(import_app, "--profiles", str(d / "profiles.jsonl"), "--hashes", str(d / "hashes.csv"))
    verify(import_app, export, tmp_path)   # what it works out of each line is remembered: joined next time
    second = tmp_path / "second"
    gen_cutoff.cutoff(d, second, seed=5)
    files = ["--profiles", str(second / "profiles.jsonl.gz"), "--hashes", str(second / "hashes.csv.gz"),
             "--deleted", str(second / "deleted.txt")]
    for step in (["import-profiles", *files], ["migration", "verify", *files]):
        counted, uncounted, buffered, joins = set(), {}, {}, []

        def seen(conn, cursor, statement, parameters, context, executemany):
            if ANALYZE.match(statement):
                counted.update(JOINED.findall(statement))
            elif not executemany and JOINS.match(statement):
                joins.append(statement)
                read = statement[re.search(r"\bSELECT\b", statement, re.I).start():]   # not an INSERT's target
                if missing := set(JOINED.findall(read)) - counted:
                    uncounted[statement] = sorted(missing)
                with engine.connect() as other:   # the scratch tables are created apart: they are there
                    plan = other.exec_driver_sql("EXPLAIN " + statement, parameters).mappings().all()
                if scans := [r["table"] for r in plan if "join buffer" in (r["Extra"] or "")]:
                    buffered[statement] = scans

        sa.event.listen(engine, "before_cursor_execute", seen)
        try:
            result = import_app.test_cli_runner().invoke(args=step)
        finally:
            sa.event.remove(engine, "before_cursor_execute", seen)
        assert result.exit_code == 0, result.output
        assert any(re.search(r"verified_lines|import_profiles", s) for s in joins)   # the set operations ran
        assert not uncounted, "\n\n".join(f"{tables}: {statement}" for statement, tables in uncounted.items())
        assert not buffered, "\n\n".join(f"{tables}: {statement}" for statement, tables in buffered.items())
