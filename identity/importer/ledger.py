"""The run's ledger: its run row, one record per input line, and the staged hash export.

The one owner of `import_runs`, `import_records` and `import_hashes`. In a real run it lives in
the store's database, so a batch's records commit in the same transaction as its store rows (the
caller passes its connection); a dry run keeps it in a scratch SQLite file instead.
"""

from __future__ import annotations

import logging
import tempfile

import sqlalchemy as sa

from identity.importer.models import ImportHash, ImportProfile, ImportRecord, ImportRun
from identity.legacy.models import utcnow
from identity.db import chunks

log = logging.getLogger(__name__)

RECORDS = ImportRecord.__table__
STAGED = ImportHash.__table__
RUNS = ImportRun.__table__


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
        for table in (RUNS, RECORDS, STAGED, ImportProfile.__table__):
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
            return set(conn.execute(sa.select(RECORDS.c.line_no).where(
                RECORDS.c.run_id == self.run_id, RECORDS.c.source == source,
                RECORDS.c.line_no.between(first, last))).scalars())

    def profile_ids(self, ids) -> set[str]:
        """Which of these userIDs an earlier profile line of this run named, whatever its outcome."""
        found = set()
        with self.engine.connect() as conn:
            for chunk in chunks(ids):
                found.update(conn.execute(sa.select(RECORDS.c.kii_user_id).where(
                    RECORDS.c.run_id == self.run_id, RECORDS.c.source == "profiles",
                    RECORDS.c.kii_user_id.in_(chunk))).scalars())
        return found

    def claims_query(self, kind: str, values) -> sa.Select:
        """(value, kii_user_id) of this run's profile lines that claimed these usernames, emails or phones."""
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
                                          RECORDS.c.line_no == STAGED.c.line_no))
                .order_by(STAGED.c.line_no).limit(limit)).all()
