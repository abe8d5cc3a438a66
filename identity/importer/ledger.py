"""The run's ledger: its run row, one record per input line, and the staged hash export.

The one owner of `import_runs`, `import_records`, `import_unchanged` and `import_hashes`. A line's
record is in one of two halves: `import_records` (every line the planner, the hash staging or the
deletions judged, with the identifiers it claimed), or `import_unchanged` (a profile line a set
operation proved unchanged, unchanged.py, and its hash line: the identifiers it claims are the
store's own, which the store answers for). What asks about lines asks here, of both.

In a real run the ledger lives in the store's database, so a batch's records commit in the same transaction as its store rows (the
caller passes its connection); a dry run keeps it in a scratch SQLite file instead.
"""

from __future__ import annotations

import logging
import tempfile

import sqlalchemy as sa

from identity.importer.models import ImportHash, ImportProfile, ImportRecord, ImportRun, ImportUnchanged
from identity.legacy.models import utcnow
from identity.db import chunks

log = logging.getLogger(__name__)

RECORDS = ImportRecord.__table__
STAGED = ImportHash.__table__
RUNS = ImportRun.__table__
UNCHANGED = ImportUnchanged.__table__


def line_sources(run_id: str, source: str) -> list[sa.Subquery]:
    """The run's lines of one export (profiles, hashes, deleted) as (line_no, kii_user_id, outcome,
    reason, flags), one subquery per half of the ledger: the report aggregates each and adds them up."""
    r, u = RECORDS, UNCHANGED
    sources = [sa.select(r.c.line_no, r.c.kii_user_id, r.c.outcome, r.c.reason, r.c.flags)
               .where(r.c.run_id == run_id, r.c.source == source)]
    if source == "profiles":
        sources.append(sa.select(u.c.line_no, u.c.kii_user_id, sa.literal("unchanged", sa.String).label("outcome"),
                                 u.c.reason, u.c.flags).where(u.c.run_id == run_id))
    elif source == "hashes":
        sources.append(sa.select(u.c.hash_line_no.label("line_no"), u.c.kii_user_id, u.c.hash_outcome.label("outcome"),
                                 sa.null().label("reason"), sa.literal(0).label("flags"))
                       .where(u.c.run_id == run_id, u.c.hash_line_no.is_not(None)))
    return [select.subquery() for select in sources]


class Ledger:
    def __init__(self, engine: sa.Engine, run_id: str):
        self.engine = engine
        self.run_id = run_id
        self._file = None  # a dry run's scratch file, kept open (and so on disk) while the ledger lives

    @classmethod
    def scratch(cls, run_id: str) -> "Ledger":
        """A dry run's ledger, in a temporary SQLite file: nothing is written to the store."""
        file = tempfile.NamedTemporaryFile(prefix="identity-dry-run-", suffix=".db")
        engine = sa.create_engine(f"sqlite:///{file.name}")
        for table in (RUNS, RECORDS, UNCHANGED, STAGED, ImportProfile.__table__):
            table.create(engine)
        ledger = cls(engine, run_id)
        ledger._file = file
        return ledger

    def begin(self):
        return self.engine.begin()

    # --- the run row ---------------------------------------------------------------------

    def start(self, arguments: str) -> None:
        with self.engine.begin() as conn:
            exists = conn.execute(sa.select(RUNS.c.run_id).where(RUNS.c.run_id == self.run_id)).first()
            if exists:
                log.info("resuming import run", extra={"run_id": self.run_id})
            else:
                conn.execute(RUNS.insert().values(run_id=self.run_id, arguments=arguments,
                                                  hashes_staged=False, started_at=utcnow()))

    def finished(self) -> bool:
        """The run ended before (the same arguments again): everything it will ever write is written."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(RUNS.c.finished_at).where(RUNS.c.run_id == self.run_id)).scalar() \
                is not None

    def finish(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(STAGED.delete().where(STAGED.c.run_id == self.run_id))
            conn.execute(RUNS.update().where(RUNS.c.run_id == self.run_id).values(finished_at=utcnow()))

    # --- records ---------------------------------------------------------------------------

    def add(self, conn: sa.Connection, records: list[dict]) -> None:
        """Records written in the caller's transaction (with the store rows they describe)."""
        if records:
            conn.execute(RECORDS.insert(), records)

    def done_lines(self, source: str, first: int, last: int) -> set[int]:
        """Line numbers between `first` and `last` whose record is committed (a resumed run skips them)."""
        with self.engine.connect() as conn:
            done = set(conn.execute(sa.select(RECORDS.c.line_no).where(
                RECORDS.c.run_id == self.run_id, RECORDS.c.source == source,
                RECORDS.c.line_no.between(first, last))).scalars())
            if source == "profiles":
                done.update(conn.execute(sa.select(UNCHANGED.c.line_no).where(
                    UNCHANGED.c.run_id == self.run_id, UNCHANGED.c.line_no.between(first, last))).scalars())
            return done

    def profile_ids(self, ids) -> set[str]:
        """Which of these userIDs an earlier profile line of this run named, whatever its outcome."""
        found = set()
        with self.engine.connect() as conn:
            for chunk in chunks(ids):
                found.update(conn.execute(sa.select(RECORDS.c.kii_user_id).where(
                    RECORDS.c.run_id == self.run_id, RECORDS.c.source == "profiles",
                    RECORDS.c.kii_user_id.in_(chunk))).scalars())
                found.update(conn.execute(sa.select(UNCHANGED.c.kii_user_id).where(
                    UNCHANGED.c.run_id == self.run_id, UNCHANGED.c.kii_user_id.in_(chunk))).scalars())
        return found

    def claims_query(self, kind: str, values) -> sa.Select:
        """(value, kii_user_id) of this run's profile lines that claimed these usernames, emails or phones.
        An unchanged line's claims are not here: they are its store row's, and the store is asked first."""
        return sa.select(RECORDS.c[kind], RECORDS.c.kii_user_id).where(
            RECORDS.c.run_id == self.run_id, RECORDS.c.source == "profiles",
            RECORDS.c.outcome != "failed", RECORDS.c[kind].in_(values))

    # --- staged hashes ---------------------------------------------------------------------

    def hashes_staged(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(RUNS.c.hashes_staged).where(RUNS.c.run_id == self.run_id)).scalar_one()

    def restart_staging(self) -> None:
        """An interrupted staging starts over: its rows and its hash records go."""
        with self.engine.begin() as conn:
            conn.execute(STAGED.delete().where(STAGED.c.run_id == self.run_id))
            conn.execute(RECORDS.delete().where(RECORDS.c.run_id == self.run_id, RECORDS.c.source == "hashes"))

    def mark_staged(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(RUNS.update().where(RUNS.c.run_id == self.run_id).values(hashes_staged=True))

    def staged_ids(self, ids) -> set[str]:
        found = set()
        with self.engine.connect() as conn:
            for chunk in chunks(ids):
                found.update(conn.execute(sa.select(STAGED.c.kii_user_id).where(
                    STAGED.c.run_id == self.run_id, STAGED.c.kii_user_id.in_(chunk))).scalars())
        return found

    def stage(self, rows: list[dict], records: list[dict]) -> None:
        """Staged rows and hash records in one transaction (IntegrityError: a duplicate among the rows)."""
        with self.engine.begin() as conn:
            if rows:
                conn.execute(STAGED.insert(), rows)
            self.add(conn, records)

    def staged(self, ids) -> dict[str, dict]:
        """The staged hash rows of these userIDs, by userID."""
        found = {}
        with self.engine.connect() as conn:
            for chunk in chunks(ids):
                for row in conn.execute(sa.select(STAGED).where(
                        STAGED.c.run_id == self.run_id, STAGED.c.kii_user_id.in_(chunk))).mappings():
                    found[row["kii_user_id"]] = dict(row)
        return found

    def unsettled_hashes(self, limit: int = 5000) -> list:
        """(kii_user_id, line_no, problem) of staged rows no profile line took, in file order."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(STAGED.c.kii_user_id, STAGED.c.line_no, STAGED.c.problem)
                .where(STAGED.c.run_id == self.run_id,
                       ~sa.exists().where(RECORDS.c.run_id == self.run_id, RECORDS.c.source == "hashes",
                                          RECORDS.c.line_no == STAGED.c.line_no),
                       ~sa.exists().where(UNCHANGED.c.run_id == self.run_id,
                                          UNCHANGED.c.kii_user_id == STAGED.c.kii_user_id,
                                          UNCHANGED.c.hash_line_no == STAGED.c.line_no))
                .order_by(STAGED.c.line_no).limit(limit)).all()
