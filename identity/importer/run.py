"""`identity import-profiles`: the Kii export into Keycloak and the legacy store.

The shape of a run (docs/import.md has the why):

1. stage the hash export in `import_hashes` (validated, fingerprinted);
2. stream the profiles in batches: a single planner, in file order, decides
   each line (imported, updated, unchanged, failed) against the store, this
   run's ledger and the batches still in flight; worker threads write each
   batch to Keycloak (partialImport), then write the store rows and the
   ledger rows in one transaction;
3. account for every hash line (stored, unchanged, kept, failed);
4. apply `--deleted` (for good: a later delivery never brings a deleted
   user back); count users the export no longer lists;
5. build the report from the ledger.

A line is done once its ledger row is committed, and that commit carries
its store rows too, so a run killed anywhere resumes (same arguments, same
run id) without redoing or losing a line, and ends where an uninterrupted
run ends. Keycloak writes come first and are idempotent (user ids derive
from the Kii userID; partialImport skips what exists).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path

import sqlalchemy as sa

from identity import audit
from identity.importer import reader
from identity.importer.models import ImportHash, ImportRecord, ImportRun
from identity.importer.profile import KiiUser, RecordError, has_non_bmp, keycloak_id, parse_user, to_keycloak
from identity.keycloak.writer import KeycloakWriter
from identity.legacy import hashes
from identity.legacy.credentials import LegacySettings
from identity.legacy.models import MigrationState, utcnow
from identity.legacy.store import IN_CHUNK, LegacyStore
from identity.progress import Progress

log = logging.getLogger(__name__)

RECORDS = ImportRecord.__table__
STAGED = ImportHash.__table__
RUNS = ImportRun.__table__
REASON_MAX = 48  # import_records.reason
SALT_MAX = 255   # legacy_users.salt
# The unique key a refused row broke, in MySQL/MariaDB's and SQLite's words.
REFUSED_KEY = re.compile(r"for key '(?:legacy_users\.)?([^']+)'|failed: legacy_users\.(\w+)")
REFUSED_REASONS = {"username": "login_name_case_collision", "email": "duplicate_email",
                   "phone_number": "duplicate_phone"}


@dataclass
class ImportOptions:
    profiles: Path
    hashes: Path | None = None
    deleted: Path | None = None
    report: Path | None = None
    workers: int = 2
    batch_size: int = 500
    dry_run: bool = False
    bmp_only: bool = False  # Keycloak stores its user fields in utf8mb3 (MySQL/MariaDB)

    def run_id(self) -> str:
        """Same files (path, size, modification time) and options: same run, so a rerun resumes it."""
        parts = {"dry_run": self.dry_run}
        for name in ("profiles", "hashes", "deleted"):
            path = getattr(self, name)
            if path is not None:
                stat = Path(path).stat()
                parts[name] = [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]

    def describe(self) -> dict:
        return {"profiles": str(self.profiles), "hashes": str(self.hashes) if self.hashes else None,
                "deleted": str(self.deleted) if self.deleted else None, "dry_run": self.dry_run,
                "bmp_only": self.bmp_only,
                "workers": self.workers, "batch_size": self.batch_size}


@dataclass
class Plan:
    """One batch, decided: what to write where."""

    records: list[dict] = field(default_factory=list)         # ledger rows (profiles and hashes)
    creates: list[tuple[KiiUser, dict]] = field(default_factory=list)
    updates: list[tuple[KiiUser, dict]] = field(default_factory=list)
    inserts: list[dict] = field(default_factory=list)         # legacy_users rows
    changes: list[dict] = field(default_factory=list)         # legacy_users updates
    claims: dict = field(default_factory=lambda: defaultdict(dict))  # kind -> value -> kii_user_id


def hash_fingerprint(secret: bytes, encoded: str, salt: str | None) -> str:
    """What tells one delivery's hash from another's, without keeping the hash readable."""
    message = b"legacy-hash\0" + encoded.encode() + b"\0" + (salt or "").encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def chunks(values, size=IN_CHUNK):
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start:start + size]


def batched(iterable, size):
    iterator = iter(iterable)
    while batch := list(islice(iterator, size)):
        yield batch


def join_reasons(reasons: list[str]) -> str | None:
    """Comma-joined reason codes that fit the ledger's column: whole codes only, never a cut one."""
    kept = []
    for reason in reasons:
        if len(",".join([*kept, reason])) <= REASON_MAX:
            kept.append(reason)
    return ",".join(kept) or None


def refused_reason(exc: sa.exc.IntegrityError) -> str:
    """Which unique key of legacy_users refused a row, as the report's reason (never the value itself)."""
    matches = list(REFUSED_KEY.finditer(str(exc.orig)))  # the last: the quoted value may look like one
    key = (matches[-1].group(1) or matches[-1].group(2)) if matches else ""
    for column, reason in REFUSED_REASONS.items():
        if key.endswith(column):
            return reason
    return "duplicate_user_id"  # the primary key, kii_user_id


class Importer:
    def __init__(self, store: sa.Engine, options: ImportOptions, legacy: LegacySettings,
                 secret_key: str | bytes, writer: KeycloakWriter | None, realm: str):
        if not secret_key:
            raise ValueError("IDENTITY_SECRET_KEY is required to import (it keys the hash fingerprints)")
        self.store = store
        self.users = LegacyStore(store)
        self.options = options
        self.legacy = legacy
        self.secret = secret_key.encode() if isinstance(secret_key, str) else secret_key
        self.writer = None if options.dry_run else writer
        self.realm = realm
        self.run_id = options.run_id()
        if options.dry_run:
            # The ledger of a dry run lives in a scratch database: nothing is written to the store.
            self._scratch = tempfile.NamedTemporaryFile(prefix="identity-dry-run-", suffix=".db")
            self.ledger = sa.create_engine(f"sqlite:///{self._scratch.name}")
            for table in (RUNS, RECORDS, STAGED):
                table.create(self.ledger)
        else:
            self.ledger = store
        self.in_flight: dict[Future, Plan] = {}
        # Where the time goes (seconds, summed over threads): reported for the benchmark.
        self.timings: dict[str, float] = defaultdict(float)
        self._timing_lock = threading.Lock()

    def _timed(self, name: str, started: float) -> None:
        with self._timing_lock:
            self.timings[name] += time.perf_counter() - started

    # --- the run --------------------------------------------------------------

    def run(self) -> dict:
        from identity.importer.report import build_report

        self._start()
        self._stage_hashes()
        self._import_profiles()
        self._settle_hashes()
        if self.options.deleted:
            self._apply_deletions()
        report = build_report(self.ledger, self.store, self.run_id, self.options)
        report["run"]["timings_s"] = {k: round(v, 2) for k, v in sorted(self.timings.items())}
        with self.ledger.begin() as conn:
            conn.execute(STAGED.delete().where(STAGED.c.run_id == self.run_id))
            conn.execute(RUNS.update().where(RUNS.c.run_id == self.run_id).values(finished_at=utcnow()))
        return report

    def _start(self) -> None:
        with self.ledger.begin() as conn:
            exists = conn.execute(sa.select(RUNS.c.run_id).where(RUNS.c.run_id == self.run_id)).first()
            if exists:
                log.info("resuming import run", extra={"run_id": self.run_id})
            else:
                conn.execute(RUNS.insert().values(run_id=self.run_id, arguments=json.dumps(self.options.describe()),
                                                  hashes_staged=False, started_at=utcnow()))

    def _record(self, source, line_no, outcome, kii_user_id=None, reason=None, flags=0, user: KiiUser | None = None):
        return {"run_id": self.run_id, "source": source, "line_no": line_no, "kii_user_id": kii_user_id,
                "outcome": outcome, "reason": reason, "flags": flags,
                "username": user.username if user and outcome != "failed" else None,
                "email": user.email if user and outcome != "failed" else None,
                "phone_number": user.phone_number if user and outcome != "failed" else None}

    # --- 1. hashes ---------------------------------------------------------------

    def fingerprint(self, encoded: str, salt: str | None) -> str:
        return hash_fingerprint(self.secret, encoded, salt)

    def _stage_hashes(self) -> None:
        with self.ledger.connect() as conn:
            staged = conn.execute(sa.select(RUNS.c.hashes_staged).where(RUNS.c.run_id == self.run_id)).scalar_one()
        if staged or not self.options.hashes:
            return
        with self.ledger.begin() as conn:  # an interrupted staging starts over
            conn.execute(STAGED.delete().where(STAGED.c.run_id == self.run_id))
            conn.execute(RECORDS.delete().where(RECORDS.c.run_id == self.run_id, RECORDS.c.source == "hashes"))
        progress = Progress(None, "staging hashes", unit="row")
        for lines in batched(reader.read_hashes(self.options.hashes), 5000):
            rows, records, seen = [], [], {}
            ids = [line.record[0] for line in lines if line.record and not line.reason]
            with self.ledger.connect() as conn:
                already = set()
                for chunk in chunks(ids):
                    already.update(conn.execute(sa.select(STAGED.c.kii_user_id).where(
                        STAGED.c.run_id == self.run_id, STAGED.c.kii_user_id.in_(chunk))).scalars())
            for line in lines:
                if line.reason:
                    user_id = line.record[0] if line.record else None
                    records.append(self._record("hashes", line.line_no, "failed", user_id, line.reason))
                    continue
                user_id, encoded, salt = line.record
                if user_id in already or user_id in seen:
                    records.append(self._record("hashes", line.line_no, "failed", user_id, "duplicate_hash_row"))
                    continue
                seen[user_id] = True
                problem = None
                try:
                    fmt = hashes.identify(encoded)
                    hashes.guarded(fmt.parse, encoded, self.legacy.context(salt))
                    if salt is not None and len(salt) > SALT_MAX:
                        raise hashes.MalformedHash("salt too long for the store")
                except hashes.LegacyHashError as exc:
                    problem = exc.code
                # An unusable hash is never stored, so it is not staged either (nor can a huge one overflow).
                rows.append({"run_id": self.run_id, "kii_user_id": user_id, "line_no": line.line_no,
                             "password_hash": None if problem else encoded, "salt": None if problem else salt,
                             "problem": problem, "fingerprint": self.fingerprint(encoded, salt)})
            try:
                with self.ledger.begin() as conn:
                    if rows:
                        conn.execute(STAGED.insert(), rows)
                    if records:
                        conn.execute(RECORDS.insert(), records)
            except sa.exc.IntegrityError:
                # The database's collation saw a duplicate the exact comparison above did not (MariaDB's
                # utf8mb4 collations take "U1" for "u1"): stage row by row, a refused row is a duplicate.
                for row in rows:
                    try:
                        with self.ledger.begin() as conn:
                            conn.execute(STAGED.insert(), [row])
                    except sa.exc.IntegrityError:
                        records.append(self._record("hashes", row["line_no"], "failed", row["kii_user_id"],
                                                    "duplicate_hash_row"))
                if records:
                    with self.ledger.begin() as conn:
                        conn.execute(RECORDS.insert(), records)
            progress.update(len(lines))
        progress.close()
        with self.ledger.begin() as conn:
            conn.execute(RUNS.update().where(RUNS.c.run_id == self.run_id).values(hashes_staged=True))

    # --- 2. profiles ---------------------------------------------------------------

    def _count_lines(self, path: Path) -> int:
        return sum(1 for _ in reader._raw_lines(path))

    def _import_profiles(self) -> None:
        total = self._count_lines(self.options.profiles)
        progress = Progress(total, "importing profiles", unit="user")
        workers = max(1, self.options.workers)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for lines in batched(reader.read_profiles(self.options.profiles), self.options.batch_size):
                self._reap(block=len(self.in_flight) >= workers, progress=progress)
                started = time.perf_counter()
                plan = self._plan(lines)
                self._timed("plan", started)
                if not plan.records:
                    progress.update(len(lines))
                    continue
                self.in_flight[pool.submit(self._apply, plan)] = plan
            while self.in_flight:
                self._reap(block=True, progress=progress)
        figures = progress.close()
        log.info("profiles done", extra=figures)

    def _reap(self, block: bool, progress: Progress) -> None:
        """Collect finished batches (re-raising their errors); wait for one when `block`."""
        from concurrent.futures import FIRST_COMPLETED, wait

        if not self.in_flight:
            return
        done, _ = wait(list(self.in_flight), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in done:
            plan = self.in_flight.pop(future)
            future.result()
            progress.update(sum(1 for r in plan.records if r["source"] == "profiles"))

    def _plan(self, lines: list[reader.Line]) -> Plan:
        plan = Plan()
        with self.ledger.connect() as conn:
            done = set(conn.execute(sa.select(RECORDS.c.line_no).where(
                RECORDS.c.run_id == self.run_id, RECORDS.c.source == "profiles",
                RECORDS.c.line_no.between(lines[0].line_no, lines[-1].line_no))).scalars())
        users: list[tuple[reader.Line, KiiUser]] = []
        for line in lines:
            if line.line_no in done:
                continue
            if line.reason:
                plan.records.append(self._record("profiles", line.line_no, "failed", None, line.reason))
                continue
            try:
                users.append((line, parse_user(line.record, self.realm)))
            except RecordError as exc:
                plan.records.append(self._record("profiles", line.line_no, "failed", exc.kii_user_id, exc.reason))
        if not users:
            return plan

        ids = [u.kii_user_id for _, u in users]
        stored = self.users.rows(ids)
        earlier = self._ledger_ids(ids)
        staged = self._staged(ids)
        claims = self._claims(users)
        deleted = self._deleted(ids)

        for line, user in users:
            uid = user.kii_user_id
            if uid in earlier or any(uid in p.claims["id"] for p in [plan, *self.in_flight.values()]):
                plan.records.append(self._record("profiles", line.line_no, "failed", uid, "duplicate_user_id"))
                continue
            if uid in deleted:
                # Deleted for good: an export that still lists them never brings them back, nor their hash.
                plan.records.append(self._record("profiles", line.line_no, "failed", uid, "deleted_user_in_export"))
                continue
            collision = self._collision(user, claims, plan)
            if collision:
                plan.records.append(self._record("profiles", line.line_no, "failed", uid, collision))
                continue
            plan.claims["id"][uid] = uid
            for kind in ("username", "email", "phone_number"):
                if getattr(user, kind):
                    plan.claims[kind][getattr(user, kind)] = uid
            self._decide(plan, line, user, stored.get(uid), staged.get(uid))
        return plan

    def _deleted(self, ids) -> set:
        """Users deleted for good, by the audit trail: named in an earlier run's `--deleted`, or who
        deleted their account here (the store no longer has them then)."""
        found = set()
        with self.store.connect() as conn:
            for chunk in chunks(ids):
                found.update(conn.execute(sa.select(audit.TABLE.c.kii_user_id).where(
                    audit.TABLE.c.kii_user_id.in_(chunk), audit.TABLE.c.event == "deleted")).scalars())
        return found

    def _ledger_ids(self, ids) -> set:
        found = set()
        with self.ledger.connect() as conn:
            for chunk in chunks(ids):
                found.update(conn.execute(sa.select(RECORDS.c.kii_user_id).where(
                    RECORDS.c.run_id == self.run_id, RECORDS.c.source == "profiles",
                    RECORDS.c.kii_user_id.in_(chunk))).scalars())
        return found

    def _staged(self, ids) -> dict:
        found = {}
        with self.ledger.connect() as conn:
            for chunk in chunks(ids):
                for row in conn.execute(sa.select(STAGED).where(
                        STAGED.c.run_id == self.run_id, STAGED.c.kii_user_id.in_(chunk))).mappings():
                    found[row["kii_user_id"]] = dict(row)
        return found

    def _claims(self, users) -> dict:
        """Who already holds each username/email/phone: the store (earlier deliveries) and this run's ledger."""
        holders = defaultdict(dict)
        for kind in ("username", "email", "phone_number"):
            values = {getattr(u, kind) for _, u in users if getattr(u, kind)}
            queries = (
                (self.store, lambda chunk: LegacyStore.holders_query(kind, chunk)),
                (self.ledger, lambda chunk: sa.select(RECORDS.c[kind], RECORDS.c.kii_user_id).where(
                    RECORDS.c.run_id == self.run_id, RECORDS.c.source == "profiles",
                    RECORDS.c.outcome != "failed", RECORDS.c[kind].in_(chunk))),
            )
            for chunk in chunks(values):
                for engine, query in queries:
                    with engine.connect() as conn:
                        found = conn.execute(query(chunk)).all()
                        for value, uid in found:
                            holders[kind].setdefault(value, uid)
                        if all(value in values for value, _ in found):
                            continue
                        # The collation matched a value that is not one of ours ("jose" for "josé", a
                        # zero-width character ignored): ask value by value whose each one is.
                        for value in chunk:
                            row = None if value in holders[kind] else conn.execute(query([value]).limit(1)).first()
                            if row:
                                holders[kind][value] = row[1]
        return holders

    def _collision(self, user: KiiUser, holders: dict, plan: Plan) -> str | None:
        reasons = {"username": "login_name_case_collision", "email": "duplicate_email",
                   "phone_number": "duplicate_phone"}
        for kind, reason in reasons.items():
            value = getattr(user, kind)
            if not value:
                continue
            owners = [holders[kind].get(value)] + [p.claims[kind].get(value) for p in [plan, *self.in_flight.values()]]
            if any(owner and owner != user.kii_user_id for owner in owners):
                if kind == "username" and not user.login_name:
                    return "duplicate_user_id"  # a userID-derived username collides only with itself
                return reason
        return None

    def _decide(self, plan: Plan, line: reader.Line, user: KiiUser, row: dict | None, staged: dict | None) -> None:
        now = utcnow()
        warnings = list(user.warnings)
        hash_ok = staged is not None and staged["problem"] is None
        hash_record = None
        if staged is not None:
            if not user.has_password:
                hash_record = ("failed", "hash_for_user_without_password")
            elif staged["problem"]:
                hash_record = ("failed", staged["problem"])
                warnings.append("unusable_hash")
        elif user.has_password and row is None:
            warnings.append("missing_hash")

        if self.options.bmp_only and has_non_bmp(user):
            warnings.append("non_bmp_replaced")
        identity_fields = {"username": user.username, "email": user.email, "phone_number": user.phone_number,
                           "disabled": user.disabled, "kii_modified": user.modified}
        if row is None:
            usable = user.has_password and hash_ok
            state = (MigrationState.pending if usable else MigrationState.reset_required).value
            plan.creates.append((user, to_keycloak(user, self.options.bmp_only, state=state)))
            plan.inserts.append({
                "kii_user_id": user.kii_user_id, "keycloak_user_id": user.keycloak_id, **identity_fields,
                "password_hash": staged["password_hash"] if usable else None,
                "salt": staged["salt"] if usable else None,
                "hash_fingerprint": staged["fingerprint"] if usable else None, "hash_layered": False,
                "state": (MigrationState.pending if usable else MigrationState.reset_required).value,
                "failed_attempts": 0, "created_at": now, "updated_at": now, "state_changed_at": now})
            outcome = "imported"
            if hash_record is None and usable:
                hash_record = ("stored", None)
        else:
            change = {}
            profile_changed = user.modified > (row["kii_modified"] or 0)
            if profile_changed:
                if row["username"] and user.username != row["username"]:
                    # Keycloak refuses to rename a user (the realm's editUsernameAllowed is off), which would
                    # stop the whole run: the first username stays, the rest is updated, the report says so.
                    user = replace(user, username=row["username"])
                    identity_fields["username"] = user.username
                    warnings.append("login_name_changed")
                plan.updates.append((user, to_keycloak(user, self.options.bmp_only)))
                change.update(identity_fields)
            state = MigrationState(row["state"])
            if staged is not None and hash_record is None:  # a usable hash for a user with a password
                if state == MigrationState.migrated:
                    hash_record = ("kept", None)  # they signed in here: their password stays
                elif staged["fingerprint"] == row["hash_fingerprint"]:
                    hash_record = ("unchanged", None)
                else:
                    change.update(password_hash=staged["password_hash"], salt=staged["salt"],
                                  hash_fingerprint=staged["fingerprint"], hash_layered=False,
                                  state=MigrationState.pending.value)
                    if state != MigrationState.pending:
                        change["state_changed_at"] = now
                    hash_record = ("stored", None)
            if change.get("state", row["state"]) != row["state"]:
                # The console shows the store's state: Keycloak's copy moves with it.
                state_rep = to_keycloak(user, self.options.bmp_only, state=change["state"])
                if profile_changed:
                    plan.updates[-1] = (user, state_rep)
                else:
                    plan.updates.append((user, state_rep))
            if change:
                change.update(kii_user_id=user.kii_user_id, updated_at=now)
                plan.changes.append(change)
            outcome = "updated" if change else "unchanged"
        reason = join_reasons(warnings)
        plan.records.append(self._record("profiles", line.line_no, outcome, user.kii_user_id, reason,
                                         user.flags, user))
        if hash_record is not None:
            plan.records.append(self._record("hashes", staged["line_no"], hash_record[0], user.kii_user_id,
                                             hash_record[1]))

    def _apply(self, plan: Plan) -> None:
        """In a worker: Keycloak first (idempotent), then store and ledger in one transaction."""
        if self.writer is not None:
            started = time.perf_counter()
            self._write_keycloak(plan)
            self._timed("keycloak", started)
        started = time.perf_counter()
        try:
            self._commit(plan)
        except sa.exc.IntegrityError:
            # The store's unique keys compare with the database's collation (MariaDB's utf8mb4 ones take
            # "U1" for "u1" and "josé" for "jose", and ignore zero-width characters), which the planner's
            # exact comparison cannot foresee within a batch: commit user by user, fail the refused ones.
            self._commit_each(plan)
        self._timed("store", started)

    def _commit(self, plan: Plan) -> None:
        with self.ledger.begin() as conn:
            if not self.options.dry_run:
                if plan.inserts:
                    self.users.insert(conn, plan.inserts)
                    conn.execute(audit.TABLE.insert(), [
                        audit.row("imported", row["created_at"], kii_user_id=row["kii_user_id"],
                                  keycloak_user_id=row["keycloak_user_id"], path="import",
                                  detail={"run": self.run_id, "state": row["state"]})
                        for row in plan.inserts])
                for change in plan.changes:
                    self.users.update(conn, change["kii_user_id"],
                                      {k: v for k, v in change.items() if k != "kii_user_id"})
            if plan.records:
                conn.execute(RECORDS.insert(), plan.records)

    def _commit_each(self, plan: Plan) -> None:
        singles = [Plan(inserts=[row]) for row in plan.inserts] + [Plan(changes=[c]) for c in plan.changes]
        for single in singles:
            uid = (single.inserts or single.changes)[0]["kii_user_id"]
            # This user's profile line and hash line; a failed line naming the same userID is not theirs.
            single.records = [r for r in plan.records if r["kii_user_id"] == uid
                              and (r["source"] == "hashes" or r["outcome"] != "failed")]
        mine = {id(r) for single in singles for r in single.records}
        self._commit(Plan(records=[r for r in plan.records if id(r) not in mine]))
        for single in singles:
            try:
                self._commit(single)
            except sa.exc.IntegrityError as exc:
                if single.inserts and self.writer is not None:
                    # Created a moment ago for this line: Keycloak must not keep a user the store refused.
                    # (Before the ledger row: a run killed in between redoes both.)
                    self._delete_keycloak_user(single.inserts[0]["keycloak_user_id"])
                # An update already reached Keycloak; the store keeps the old identifiers, and
                # `migration verify` names the user (keycloak_differs) until the data is fixed.
                profile = next(r for r in single.records if r["source"] == "profiles")
                failed = {**profile, "outcome": "failed", "reason": refused_reason(exc), "flags": 0,
                          "username": None, "email": None, "phone_number": None}
                self._commit(Plan(records=[failed]))  # its hash line is settled as profile_failed

    def _delete_keycloak_user(self, user_id: str) -> None:
        self.writer.delete_user(user_id)

    def _write_keycloak(self, plan: Plan) -> None:
        _, skipped = self.writer.create([rep for _, rep in plan.creates])
        conflicts = {uid for uid in skipped if not self.writer.exists(uid)}
        for user, representation in plan.updates:
            if not self.writer.update(representation):
                # Gone from Keycloak behind the importer's back: create it again.
                self.writer.create([representation])
        if conflicts:
            # Skipped, and not ours: another Keycloak user holds this username or email.
            failed = {user.kii_user_id for user, rep in plan.creates if rep["id"] in conflicts}
            plan.inserts[:] = [row for row in plan.inserts if row["kii_user_id"] not in failed]
            kept = []
            for record in plan.records:
                if record["kii_user_id"] in failed:
                    if record["source"] == "hashes":
                        continue  # settled later as a hash for an unknown user
                    record = {**record, "outcome": "failed", "reason": "keycloak_conflict", "username": None,
                              "email": None, "phone_number": None}
                kept.append(record)
            plan.records[:] = kept

    # --- 3. hash lines nobody claimed ------------------------------------------------

    def _settle_hashes(self) -> None:
        if not self.options.hashes:
            return
        while True:
            with self.ledger.connect() as conn:
                rows = conn.execute(
                    sa.select(STAGED.c.kii_user_id, STAGED.c.line_no, STAGED.c.problem)
                    .where(STAGED.c.run_id == self.run_id,
                           ~sa.exists().where(RECORDS.c.run_id == self.run_id, RECORDS.c.source == "hashes",
                                              RECORDS.c.line_no == STAGED.c.line_no))
                    .order_by(STAGED.c.line_no).limit(5000)).all()
            if not rows:
                return
            ids = [r.kii_user_id for r in rows]
            in_store, in_ledger, deleted = set(self.users.rows(ids)), self._ledger_ids(ids), self._deleted(ids)
            records = []
            for row in rows:
                if row.kii_user_id in deleted:
                    outcome, reason = "failed", "deleted_user_in_export"  # never stored again
                elif row.kii_user_id in in_ledger:
                    outcome, reason = "failed", "profile_failed"  # its profile line failed: nothing to attach to
                elif row.kii_user_id in in_store:
                    # A user of an earlier delivery that this export does not list: left as it is.
                    outcome, reason = ("failed", row.problem) if row.problem else ("unused", "user_not_in_export")
                else:
                    outcome, reason = "failed", "hash_for_unknown_user"
                records.append(self._record("hashes", row.line_no, outcome, row.kii_user_id, reason))
            with self.ledger.begin() as conn:
                conn.execute(RECORDS.insert(), records)

    # --- 4. deletions ----------------------------------------------------------------

    def _apply_deletions(self) -> None:
        for lines in batched(reader.read_deleted(self.options.deleted), self.options.batch_size):
            with self.ledger.connect() as conn:
                done = set(conn.execute(sa.select(RECORDS.c.line_no).where(
                    RECORDS.c.run_id == self.run_id, RECORDS.c.source == "deleted",
                    RECORDS.c.line_no.between(lines[0].line_no, lines[-1].line_no))).scalars())
            todo = [line for line in lines if line.line_no not in done]
            ids = [line.record for line in todo if not line.reason and line.record]
            stored, deleted = self.users.rows(ids), self._deleted(ids)
            records, changes = [], []
            for line in todo:
                if line.reason or not line.record:
                    records.append(self._record("deleted", line.line_no, "failed", None, line.reason or "missing_user_id"))
                    continue
                row = stored.get(line.record)
                if row is None:
                    records.append(self._record("deleted", line.line_no, "failed", line.record, "deleted_unknown_user"))
                    continue
                already = line.record in deleted and row["disabled"] and row["password_hash"] is None
                if not already and self.writer is not None:
                    self.writer.disable(row["keycloak_user_id"] or keycloak_id(self.realm, line.record))
                if not already:
                    state = row["state"] if row["state"] == MigrationState.migrated.value else \
                        MigrationState.reset_required.value
                    changes.append({"k": line.record, "state": state, "now": utcnow(),
                                    "changed": row["state"] != state, "keycloak_user_id": row["keycloak_user_id"]})
                    # The same userID again in this batch finds the user deleted, as a later batch would.
                    stored[line.record] = {**row, "disabled": True, "password_hash": None, "state": state}
                    deleted.add(line.record)
                records.append(self._record("deleted", line.line_no, "unchanged" if already else "disabled",
                                            line.record))
            with self.ledger.begin() as conn:
                if not self.options.dry_run:
                    for change in changes:
                        self.users.mark_deleted(conn, change["k"], change["state"], change["now"], change["changed"])
                        # What tells later deliveries that this user is gone for good (see _deleted).
                        audit.record(conn, "deleted", change["now"], kii_user_id=change["k"],
                                     keycloak_user_id=change["keycloak_user_id"], path="import",
                                     detail={"run": self.run_id})
                if records:
                    conn.execute(RECORDS.insert(), records)

