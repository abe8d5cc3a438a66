"""A later delivery's unchanged lines, recorded by set operations in the database.

Most lines of a cut-off delivery describe a user exactly as the store already holds them. Planning
those one by one (plan.py) costs a round of lookups per batch; here the export's readable lines are
staged (`import_profiles`, owned by this module), and one INSERT ... SELECT per slice of lines
records every line the planner would itself decide "unchanged", with its hash line's outcome. The
lines left over go through the planner as before (a line whose ledger record exists is skipped).

The condition is deliberately narrow, so that it is the planner's decision and never a new one:
the store holds the user with the same username, email and phone and a Kii modification time at
least as recent; no other line names the same userID or one of those identifiers (`contested`); the
user was never deleted; and the staged hash, if any, is usable and is the one stored (or the user
migrated here: their password stays, "kept"). `tests/importer/test_unchanged.py` holds the two
paths to the same ledger.
"""

from __future__ import annotations

import sqlalchemy as sa

from identity import audit
from identity.importer import reader
from identity.importer.ledger import RECORDS, RUNS, STAGED, Ledger, chunks
from identity.importer.models import ImportProfile
from identity.importer.plan import join_reasons
from identity.importer.profile import RecordError, has_non_bmp, parse_user
from identity.legacy.models import LegacyUser, MigrationState
from identity.progress import Progress

PROFILES = ImportProfile.__table__
USERS = LegacyUser.__table__
BATCH = 5000
SLICE = 50_000   # lines per INSERT ... SELECT: one transaction each
CONTESTED = ("kii_user_id", "username", "email", "phone_number")


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
        """A readable line's staged row; None for a line the planner alone can judge."""
        if line.reason:
            return None
        try:
            user = parse_user(line.record, self.realm)
        except RecordError:
            return None
        warnings = list(user.warnings)
        if self.bmp_only and has_non_bmp(user):
            warnings.append("non_bmp_replaced")
        return {"run_id": self.run_id, "line_no": line.line_no, "kii_user_id": user.kii_user_id,
                "modified": user.modified, "username": user.username, "email": user.email,
                "phone_number": user.phone_number, "has_password": user.has_password, "flags": user.flags,
                "reason": join_reasons(warnings), "contested": False}

    def _contest(self) -> None:
        """Mark the lines sharing a userID or an identifier with another user's line (as the database's
        collation compares them: it is the collation the store's unique keys use)."""
        run = PROFILES.c.run_id == self.run_id
        with self.ledger.begin() as conn:
            for name in CONTESTED:
                column = PROFILES.c[name]
                many = sa.func.count() if name == "kii_user_id" else sa.func.count(PROFILES.c.kii_user_id.distinct())
                shared = sa.select(column.label("value")).where(run, column.is_not(None)) \
                    .group_by(column).having(many > 1).subquery()
                lines = list(conn.execute(sa.select(PROFILES.c.line_no).join(shared, column == shared.c.value)
                                          .where(run)).scalars())
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
        p, s = PROFILES.alias("p"), USERS.alias("s")
        h = STAGED.alias("h")
        migrated = s.c.state == MigrationState.migrated.value
        recorded = RECORDS.alias("r")
        unchanged = sa.and_(
            p.c.run_id == self.run_id, p.c.line_no.between(first, last), ~p.c.contested,
            p.c.modified <= s.c.kii_modified,
            p.c.username.is_not_distinct_from(s.c.username), p.c.email.is_not_distinct_from(s.c.email),
            p.c.phone_number.is_not_distinct_from(s.c.phone_number),
            # No staged hash; or a usable one for a user with a password that is already stored (or that
            # a password set here overrides).
            sa.or_(h.c.kii_user_id.is_(None),
                   sa.and_(p.c.has_password, h.c.problem.is_(None),
                           sa.or_(migrated, h.c.fingerprint == s.c.hash_fingerprint))),
            ~sa.exists().where(audit.TABLE.c.kii_user_id == p.c.kii_user_id, audit.TABLE.c.event == "deleted"),
            ~sa.exists().where(recorded.c.run_id == self.run_id, recorded.c.source == "profiles",
                               recorded.c.line_no == p.c.line_no))
        joined = p.join(s, s.c.kii_user_id == p.c.kii_user_id).outerjoin(
            h, sa.and_(h.c.run_id == self.run_id, h.c.kii_user_id == p.c.kii_user_id))
        hashes = sa.select(
            sa.literal(self.run_id), sa.literal("hashes"), h.c.line_no, p.c.kii_user_id,
            sa.case((migrated, sa.literal("kept")), else_=sa.literal("unchanged")), sa.null(), sa.literal(0),
            sa.null(), sa.null(), sa.null()).select_from(joined).where(unchanged, h.c.kii_user_id.is_not(None))
        profiles = sa.select(
            sa.literal(self.run_id), sa.literal("profiles"), p.c.line_no, p.c.kii_user_id, sa.literal("unchanged"),
            p.c.reason, p.c.flags, p.c.username, p.c.email, p.c.phone_number).select_from(joined).where(unchanged)
        columns = ["run_id", "source", "line_no", "kii_user_id", "outcome", "reason", "flags", "username", "email",
                   "phone_number"]
        with self.ledger.begin() as conn:
            # Hash lines first: the profile lines' records are what the condition checks for.
            conn.execute(RECORDS.insert().from_select(columns, hashes))
            return conn.execute(RECORDS.insert().from_select(columns, profiles)).rowcount
