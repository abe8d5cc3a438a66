"""`migration verify`'s inputs, loaded into scratch tables of the store's database: the delivery's lines,
hashes and deletions, and every Keycloak user of the realm (read through the provider's
`users/compact`, in pages of thousands, only what is compared).

The profile lines are the most work (each is validated and normalised as the import does), so a line
verify has seen before is not worked out again (expected.py): a forked worker stages every line's key
and another reads the hashes while this process reads Keycloak; the lines seen before are filled in
by the database, and the forked workers parse a share each of the rest. The tables are named per run and
dropped when it ends.
"""

from __future__ import annotations

import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import sqlalchemy as sa

from identity import audit
from identity.db import analyze, chunks
from identity.importer import expected, reader
from identity.importer.expected import ExpectedLines, scratch_table
from identity.importer.forks import forked
from identity.importer.profile import RecordError, parse_user, to_keycloak
from identity.importer.reconcile import PARTS, DIGEST, compared
from identity.importer.stage import hash_fingerprint
from identity.keycloak.writer import KeycloakWriter
from identity.legacy import hashes
from identity.legacy.store import joinable

BATCH = 5000
PAGE = 5000
# Where the walks over Keycloak's users split the ids (inclusive upper bounds): ids are UUIDs, so two
# walks of about half each. Any ids are walked whole, however they spread.
BOUNDS = ("8",)
IDENTIFIERS = ("username", "email", "phone_number")


def _parts(*left_out: str) -> list[sa.Column]:
    return [sa.Column(name, sa.String(320) if name == "email" else sa.String(DIGEST)) for name in PARTS
            if name not in left_out]


def scratch_tables(suffix: str) -> sa.MetaData:
    """This run's tables, named apart so that two verifies never meet; dropped when it ends."""
    meta = sa.MetaData()
    sa.Table(f"verify_{suffix}_export", meta,
             sa.Column("line_no", sa.BigInteger, primary_key=True, autoincrement=False),
             sa.Column("kii_user_id", sa.String(64), nullable=False),
             sa.Column("keycloak_id", sa.String(36), nullable=False),
             sa.Column("username", sa.String(255)), sa.Column("email", sa.String(320)),
             sa.Column("phone_number", sa.String(20)), *_parts("email"),
             sa.Column("disabled", sa.Boolean), sa.Column("has_password", sa.Boolean),
             sa.Column("deleted", sa.Boolean), sa.Column("invalid", sa.Boolean, default=False),
             # Filled in from what an earlier verify worked out of the same line (expected.py).
             sa.Column("remembered", sa.Boolean, default=False))
    sa.Table(f"verify_{suffix}_keycloak", meta, sa.Column("id", sa.String(36), primary_key=True),
             sa.Column("kii_user_id", sa.String(64)), *_parts(),
             sa.Column("enabled", sa.Boolean), sa.Column("password", sa.Boolean))
    # Keyed by the line, in the order the file is read: keyed by userID, every row landed anywhere in the
    # table. The userID's index comes once the rows are in (later_indexes), then the later lines of a userID
    # go (Inputs._first_hashes).
    sa.Table(f"verify_{suffix}_hashes", meta,
             sa.Column("line_no", sa.BigInteger, primary_key=True, autoincrement=False),
             sa.Column("kii_user_id", sa.String(64), nullable=False),
             sa.Column("fingerprint", sa.String(64)), sa.Column("usable", sa.Boolean))
    sa.Table(f"verify_{suffix}_deleted", meta, sa.Column("kii_user_id", sa.String(64), primary_key=True))
    scratch_table(meta, f"verify_{suffix}_lines")
    return meta


def later_indexes(export: sa.Table, kc: sa.Table, hashes: sa.Table) -> list[sa.Index]:
    """Built once the rows are in: one pass over a loaded table costs far less than keeping an index
    up to date row by row. The hashes' index holds all the comparison reads of them: it is read alone."""
    return [sa.Index(f"ix_{export.name}_{name}", export.c[name]) for name in ("kii_user_id", *IDENTIFIERS)] + \
        [sa.Index(f"ix_{kc.name}_kii_user_id", kc.c.kii_user_id),
         sa.Index(f"ix_{hashes.name}_kii_user_id", hashes.c.kii_user_id, hashes.c.fingerprint, hashes.c.usable)]


class Inputs:
    def __init__(self, store: sa.Engine, keycloak: KeycloakWriter, realm: str, legacy, secret_key,
                 bmp_only: bool = False):
        self.store, self.keycloak, self.realm, self.legacy = store, keycloak, realm, legacy
        self.bmp_only = bmp_only
        self.secret = secret_key.encode() if isinstance(secret_key, str) else secret_key
        suffix = secrets.token_hex(4)
        self.meta = scratch_tables(suffix)
        self.export, self.kc, self.hashes, self.deleted, staged = (
            self.meta.tables[f"verify_{suffix}_{name}"]
            for name in ("export", "keycloak", "hashes", "deleted", "lines"))
        self.expected = ExpectedLines(staged, self.export, self.deleted, realm, bmp_only)
        self.lines = 0
        self.counts = {"remembered": 0, "parsed": 0}
        self.timings: dict[str, float] = {}
        self.deleted_ids: set[str] = set()

    @contextmanager
    def loaded(self, profiles, hashes_path, deleted_path):
        """The tables, filled; dropped when the block ends."""
        self.meta.create_all(self.store)
        try:
            self._load(profiles, hashes_path, deleted_path)
            yield self
        finally:
            self.meta.drop_all(self.store)

    def _load(self, profiles, hashes_path, deleted_path) -> None:
        started = time.perf_counter()
        if deleted_path:
            self._load_deleted(deleted_path)
        # SQLite takes one writer at a time: one share there.
        shares = 1 if self.store.dialect.name == "sqlite" else max(1, min(2, os.cpu_count() or 1))
        with forked(self, self.store, shares) as submit:
            staging = submit("stage_lines", str(profiles))
            hashing = submit("load_hashes", str(hashes_path)) if hashes_path else None
            with ThreadPoolExecutor(max_workers=1) as thread:
                keycloak = thread.submit(self._timed, "keycloak", self.load_keycloak)
                self.lines = staging.result()
                self.timings["staged"] = round(time.perf_counter() - started, 2)
                self.counts["remembered"] = self._timed("remembered", self._fill)
                self.counts["parsed"] = sum(job.result() for job in [
                    submit("load_share", str(profiles), share, shares) for share in range(shares)])
                self.timings["export"] = round(time.perf_counter() - started, 2)
                if hashing:
                    self.timings["hashes"] = hashing.result()
                    self._timed("hashes_index", self._index, self.hashes)
                    self._timed("hashes_first", self._first_hashes)
                # What needs the lines alone is done while Keycloak is still being read.
                self._timed("indexes", self._index, self.export)
                self._timed("invalid", self._mark_invalid)
                self._timed("remember", self._remember)
                keycloak.result()
        self._timed("keycloak_index", self._index, self.kc)
        # The comparison joins every table here to the store and the audit trail.
        analyze(self.store, self.hashes, self.deleted, joinable("s"), audit.TABLE)

    def _fill(self) -> int:
        analyze(self.store, self.expected.lines, expected.TABLE, self.deleted)
        with self.store.begin() as conn:
            return self.expected.fill(conn)

    def _remember(self) -> None:
        with self.store.begin() as conn:
            self.expected.remember(conn)

    def stage_lines(self, profiles) -> int:
        """Every line's key (expected.py); how many lines the export has."""
        count = 0
        for lines in reader.batched(reader.read_profiles(profiles), BATCH):
            count += len(lines)
            self._insert(self.expected.lines, [row for row in map(self.expected.staged, lines) if row])
        return count

    def _index(self, table: sa.Table) -> None:
        for index in later_indexes(self.export, self.kc, self.hashes):
            if index.table is table:
                index.create(self.store)
        analyze(self.store, table)

    def _timed(self, name: str, step, *args):
        started = time.perf_counter()
        try:
            return step(*args)
        finally:
            self.timings[name] = round(time.perf_counter() - started, 2)

    def load_keycloak(self) -> None:
        """Every user of the realm: walks over disjoint ranges of ids side by side (Keycloak's database
        answers each page's statements on one core), a page at a time."""
        bounds = [None, *BOUNDS, None]
        with ThreadPoolExecutor(max_workers=len(bounds) - 1) as walks:
            for walk in [walks.submit(self._walk, after, to) for after, to in zip(bounds, bounds[1:])]:
                walk.result()

    def _walk(self, after: str | None, to: str | None) -> None:
        """The users after `after` up to `to`; the next page is asked for while this one is stored."""
        with ThreadPoolExecutor(max_workers=1) as fetcher:
            page = fetcher.submit(self.keycloak.compact_page, after, PAGE, to)
            while page is not None:
                users, after = page.result()
                page = fetcher.submit(self.keycloak.compact_page, after, PAGE, to) if after else None
                self._insert(self.kc, [self._keycloak_row(u) for u in users])

    @staticmethod
    def _keycloak_row(u: dict) -> dict:
        return {"id": u["id"], "kii_user_id": ((u.get("attributes") or {}).get("kii_user_id") or [None])[0],
                **compared(u["username"], u.get("email"), u["enabled"], u["emailVerified"], u.get("attributes")),
                "enabled": bool(u["enabled"]), "password": bool(u["password"])}

    def _load_deleted(self, path) -> None:
        for lines in reader.batched(reader.read_deleted(path), BATCH):
            ids = {line.record for line in lines if not line.reason and line.record} - self.deleted_ids
            self.deleted_ids |= ids
            self._insert(self.deleted, [{"kii_user_id": i} for i in ids])

    def load_hashes(self, path) -> float:
        """Every readable hash line (the first of each userID counts: `_first_hashes`); how long it took."""
        started = time.perf_counter()
        for lines in reader.batched(reader.read_hashes(path), BATCH):
            self._insert(self.hashes, [self._hash_row(line) for line in lines if not line.reason and line.record])
        return round(time.perf_counter() - started, 2)

    def _first_hashes(self) -> None:
        """Only the first line of each userID as the database's collation compares them ("AB" is "ab" to
        MariaDB's): the import refuses the later ones (`duplicate_hash_row`)."""
        h = self.hashes
        with self.store.begin() as conn:
            for chunk in chunks(sorted(later_lines(conn, h, "kii_user_id"))):
                conn.execute(h.delete().where(h.c.line_no.in_(chunk)))

    def load_share(self, profiles, share: int, shares: int) -> int:
        """The profile lines whose number is `share` modulo `shares` and that were not filled in from an
        earlier verify; how many."""
        count = 0
        line_no = self.export.c.line_no

        def others(first: int, last: int) -> set[int]:
            with self.store.connect() as conn:
                filled = set(conn.execute(sa.select(line_no).where(line_no.between(first, last))).scalars())
            return filled | {n for n in range(first, last + 1) if n % shares != share}

        for lines in reader.batched(reader.read_profiles(profiles, others), BATCH):
            count += len(lines)
            self._insert(self.export, [row for line in lines if (row := self._line_row(line))])
        return count

    def _hash_row(self, line) -> dict:
        user_id, encoded, salt = line.record
        try:
            hashes.guarded(hashes.identify(encoded).parse, encoded, self.legacy.context(salt))
            usable = True
        except hashes.LegacyHashError:
            usable = False
        return {"line_no": line.line_no, "kii_user_id": user_id,
                "fingerprint": hash_fingerprint(self.secret, encoded, salt), "usable": usable}

    def _line_row(self, line) -> dict | None:
        deleted = self.deleted_ids
        if line.reason:
            return None
        try:
            user = parse_user(line.record, self.realm)
        except RecordError:
            return None
        if user.kii_user_id in deleted:
            user.disabled = True  # deleted on Kii: expected disabled, without a legacy hash
        want = to_keycloak(user, self.bmp_only)
        return {"line_no": line.line_no, "kii_user_id": user.kii_user_id, "keycloak_id": user.keycloak_id,
                "username": user.username, "phone_number": user.phone_number,
                **compared(want["username"], want.get("email"), want["enabled"], want["emailVerified"],
                           want["attributes"]),
                "disabled": user.disabled, "has_password": user.has_password,
                "deleted": user.kii_user_id in deleted, "invalid": False}

    def _insert(self, table: sa.Table, rows: list[dict]) -> None:
        if rows:
            with self.store.begin() as conn:
                conn.execute(table.insert(), rows)

    def _mark_invalid(self) -> None:
        """Lines the import refuses as duplicates: a userID an earlier line has, or a username, email or
        phone an earlier line of another user claims (as the database's collation compares them)."""
        e = self.export
        with self.store.connect() as conn:
            invalid = later_lines(conn, e, "kii_user_id")
            for name in IDENTIFIERS:
                invalid |= later_lines(conn, e, name, other_user=True)
        with self.store.begin() as conn:
            for chunk in chunks(sorted(invalid)):
                conn.execute(e.update().where(e.c.line_no.in_(chunk)).values(invalid=True))


def later_lines(conn, table: sa.Table, name: str, other_user: bool = False) -> set[int]:
    """The lines of `table` whose `name` an earlier line has too, as the database's collation compares them
    (with `other_user`, an earlier line of another userID). First the first line of each value more than
    one line names: few, and read from the index alone (one join of the lines with this grouping sorted
    every value in a temporary table); then the other lines of those values, by the index."""
    column, first = table.c[name], table.alias("first")
    firsts = conn.execute(sa.select(sa.func.min(table.c.line_no)).where(column.is_not(None))
                          .group_by(column).having(sa.func.count() > 1)).scalars().all()
    found = set()
    for chunk in chunks(firsts):
        query = sa.select(table.c.line_no).join(first, column == first.c[name]) \
            .where(first.c.line_no.in_(chunk), table.c.line_no != first.c.line_no)
        if other_user:
            query = query.where(table.c.kii_user_id != first.c.kii_user_id)
        found.update(conn.execute(query).scalars())
    return found
