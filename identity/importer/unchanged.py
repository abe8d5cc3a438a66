"""A later delivery's unchanged lines, recorded by set operations in the database.

Most lines of a cut-off delivery describe a user exactly as the store already holds them. Planning
those one by one (plan.py) costs a round of lookups per batch; here the export's readable lines are
staged (`import_profiles`, owned by this module), and one INSERT ... SELECT per slice of lines
records every line the planner would itself decide "unchanged", with its hash line's outcome, in
the ledger's compact half (`import_unchanged`: no identifier indexes to write, the store answers
for them). The lines left over go through the planner as before (a line the ledger holds is skipped).

The condition is deliberately narrow, so that it is the planner's decision and never a new one: the
store row was last written from this very line (`legacy_users.import_digest`, the digest of its
bytes: plan.line_digest), so its identifiers, Kii modification time, flags and warnings are the
line's own and nothing needs parsing; no other line names the same userID (`contested`: the
planner decides those in file order); the user was never deleted; and the staged hash, if any, is
usable and is the one stored (or the user migrated here: their password stays, "kept"). Another
line claiming one of the user's identifiers is refused by the planner whatever the order, since
the store holds them. `tests/importer/test_unchanged.py` holds the two paths to the same ledger.
"""

from __future__ import annotations

import sqlalchemy as sa

from identity import audit
from identity.db import analyze, chunks
from identity.importer import reader
from identity.importer.ledger import RECORDS, RUNS, STAGED, UNCHANGED, Ledger
from identity.importer.models import ImportProfile
from identity.importer.plan import line_digest
from identity.importer.profile import has_password as _has_password
from identity.legacy.models import MigrationState
from identity.legacy.store import joinable
from identity.progress import Progress

PROFILES = ImportProfile.__table__
BATCH = 5000
SLICE = 50_000   # lines per INSERT ... SELECT: one transaction each
USER_ID_MAX = PROFILES.c.kii_user_id.type.length


class UnchangedLines:
    def __init__(self, ledger: Ledger, realm: str, bmp_only: bool = False):
        self.ledger = ledger
        self.realm = realm
        self.bmp_only = bmp_only

    @property
    def run_id(self) -> str:
        return self.ledger.run_id

    def record(self, path) -> int:
        """Stage the export (once per run) and record its provably unchanged lines; how many."""
        self.stage(path)
        analyze(self.ledger.engine, PROFILES, STAGED, RECORDS, UNCHANGED, joinable("s"), audit.TABLE)
        recorded = 0
        for first in range(1, self._last_line() + 1, SLICE):
            recorded += self._record_slice(first, first + SLICE - 1)
        return recorded

    # --- staging -------------------------------------------------------------------------

    def stage(self, path) -> None:
        if self._staged():
            return
        with self.ledger.begin() as conn:  # an interrupted staging starts over
            conn.execute(PROFILES.delete().where(PROFILES.c.run_id == self.run_id))
        progress = Progress(None, "staging profiles", unit="line")
        for lines in reader.batched(reader.read_profiles(path), BATCH):
            rows = [row for row in map(self._row, lines) if row is not None]
            if rows:
                with self.ledger.begin() as conn:
                    conn.execute(PROFILES.insert(), rows)
            progress.update(len(lines))
        progress.close()
        self._contest()
        with self.ledger.begin() as conn:
            conn.execute(RUNS.update().where(RUNS.c.run_id == self.run_id).values(profiles_staged=True))

    def _row(self, line: reader.Line) -> dict | None:
        """A readable line's staged row (no parsing: its bytes and its userID); None for a line the
        planner alone can judge."""
        user_id = reader.stageable_user_id(line, USER_ID_MAX)
        if user_id is None:
            return None
        return {"run_id": self.run_id, "line_no": line.line_no, "kii_user_id": user_id,
                "digest": line_digest(self.realm, self.bmp_only, line.data), "has_password": _has_password(line.record),
                "contested": False}

    def _contest(self) -> None:
        """Mark the lines whose userID another line names too (as the database's collation compares
        them: it is the collation of the store's primary key)."""
        run = PROFILES.c.run_id == self.run_id
        with self.ledger.begin() as conn:
            shared = sa.select(PROFILES.c.kii_user_id.label("value")).where(run) \
                .group_by(PROFILES.c.kii_user_id).having(sa.func.count() > 1).subquery()
            lines = list(conn.execute(sa.select(PROFILES.c.line_no).join(
                shared, PROFILES.c.kii_user_id == shared.c.value).where(run)).scalars())
            for chunk in chunks(lines):
                conn.execute(PROFILES.update().where(run, PROFILES.c.line_no.in_(chunk)).values(contested=True))

    def _staged(self) -> bool:
        with self.ledger.engine.connect() as conn:
            return bool(conn.execute(sa.select(RUNS.c.profiles_staged).where(RUNS.c.run_id == self.run_id))
                        .scalar())

    def _last_line(self) -> int:
        with self.ledger.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.max(PROFILES.c.line_no))
                                .where(PROFILES.c.run_id == self.run_id)).scalar() or 0

    def finish(self) -> None:
        with self.ledger.begin() as conn:
            conn.execute(PROFILES.delete().where(PROFILES.c.run_id == self.run_id))

    # --- the set operation -------------------------------------------------------------------

    def _record_slice(self, first: int, last: int) -> int:
        p, s = PROFILES.alias("p"), joinable("s")
        h = STAGED.alias("h")
        migrated = s.c.state == MigrationState.migrated.value
        recorded, compact = RECORDS.alias("r"), UNCHANGED.alias("u")
        unchanged = sa.and_(
            p.c.run_id == self.run_id, p.c.line_no.between(first, last), ~p.c.contested,
            p.c.digest == s.c.import_digest,
            # No staged hash; or a usable one for a user with a password that is already stored (or that
            # a password set here overrides).
            sa.or_(h.c.kii_user_id.is_(None),
                   sa.and_(p.c.has_password, h.c.problem.is_(None),
                           sa.or_(migrated, h.c.fingerprint == s.c.hash_fingerprint))),
            ~sa.exists().where(audit.TABLE.c.kii_user_id == p.c.kii_user_id, audit.TABLE.c.event == "deleted"),
            # The slice's own range as well: MariaDB materialises this subquery, and without the range it
            # would read every record of the run for each slice, a cost growing with the square of the lines.
            ~sa.exists().where(recorded.c.run_id == self.run_id, recorded.c.source == "profiles",
                               recorded.c.line_no.between(first, last), recorded.c.line_no == p.c.line_no),
            ~sa.exists().where(compact.c.run_id == self.run_id, compact.c.line_no.between(first, last),
                               compact.c.line_no == p.c.line_no))
        joined = p.join(s, s.c.kii_user_id == p.c.kii_user_id).outerjoin(
            h, sa.and_(h.c.run_id == self.run_id, h.c.kii_user_id == p.c.kii_user_id))
        lines = sa.select(
            sa.literal(self.run_id), p.c.line_no, s.c.kii_user_id, s.c.import_reason, s.c.import_flags, h.c.line_no,
            sa.case((h.c.kii_user_id.is_(None), sa.null()), (migrated, sa.literal("kept")),
                    else_=sa.literal("unchanged")),
        ).select_from(joined).where(unchanged)
        columns = ["run_id", "line_no", "kii_user_id", "reason", "flags", "hash_line_no", "hash_outcome"]
        with self.ledger.begin() as conn:
            return conn.execute(UNCHANGED.insert().from_select(columns, lines)).rowcount
