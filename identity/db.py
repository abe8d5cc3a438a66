"""The SQLAlchemy extension and the Alembic wiring (schema lives in migrations/ only)."""

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import sqlalchemy as sa
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase

T = TypeVar("T")
# Values per IN (...) list, below MariaDB's eq_range_index_dive_limit: from that length on it estimates
# the list from the index's statistics instead of looking each value up, and on tables that grow through
# an import (the ledger, the audit trail) those estimates sent it scanning the whole run for each batch.
IN_CHUNK = 100
MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")

# Named constraints: Alembic can then drop/alter them the same way on SQLite and MariaDB.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)
migrate = Migrate(directory=MIGRATIONS_DIR)


def chunks(values, size: int = IN_CHUNK):
    """`values` in lists short enough for an IN (...) the database looks up value by value."""
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start:start + size]


def analyze(engine: sa.Engine, *tables: sa.Table | sa.Alias) -> None:
    """Bring the database's statistics of `tables` up to date before a set operation joins them.

    InnoDB recounts a table only some time after a tenth of it changed, and a restored or restarted
    server can keep counts from before a bulk load: a large table counted empty made MariaDB scan
    it in a join buffer for every row of the other side. Sampling a few pages per index
    costs milliseconds. On a connection of its own: ANALYZE TABLE ends the transaction it runs in.
    SQLite's planner assumes an index is selective without statistics."""
    if engine.dialect.name == "mysql":
        tables = [table.element if isinstance(table, sa.Alias) else table for table in tables]  # as joined
        names = ", ".join(engine.dialect.identifier_preparer.format_table(table) for table in tables)
        with engine.connect() as conn:
            conn.exec_driver_sql(f"ANALYZE TABLE {names}").all()


@contextmanager
def bulk_loaded(conn: sa.Connection) -> Iterator[sa.Connection]:
    """The block's first INSERT into an empty table loaded in bulk (MariaDB): its rows sorted by the
    table's key and each index built a page at a time, with no undo but the table's emptiness, instead
    of one row at a time wherever its key falls. The table is locked until the transaction ends, and a
    failure rolls the whole transaction back. Without unique and foreign key checks: for a scratch
    table whose key its own SELECT makes unique."""
    if conn.dialect.name != "mysql":
        yield conn
        return
    conn.exec_driver_sql("SET SESSION unique_checks = 0, foreign_key_checks = 0")
    try:
        yield conn
    finally:
        conn.exec_driver_sql("SET SESSION unique_checks = 1, foreign_key_checks = 1")


def init_app(app) -> None:
    db.init_app(app)
    # render_as_batch: SQLite cannot ALTER most things; batch mode copies the table instead.
    migrate.init_app(app, db, render_as_batch=True, compare_type=True)


# MariaDB ends one of two transactions that wait on each other's locks (a deadlock) or one that waited
# too long; a savepoint inside the ended transaction goes with it. Two processes writing a row that
# does not exist yet (update, then insert) lock the same gap and meet exactly so.
LOST_RACE = {1205, 1213, 1305}  # lock wait timeout, deadlock, savepoint gone
RACE_ATTEMPTS = 3


def lost_race(exc: OperationalError) -> bool:
    """Whether the database ended this transaction as one of two racing: running it again will do."""
    args = getattr(exc.orig, "args", None) or [None]
    return args[0] in LOST_RACE


def transaction(engine: sa.Engine, work: Callable[[sa.Connection], T]) -> T:
    """`work(conn)` in a transaction of its own, run again when it lost a race to another one
    (`work` must read what it needs inside, as a second run starts from the other one's result)."""
    for _ in range(RACE_ATTEMPTS - 1):
        try:
            with engine.begin() as conn:
                return work(conn)
        except OperationalError as exc:
            if not lost_race(exc):
                raise
    with engine.begin() as conn:  # the last attempt: what goes wrong now is the caller's to see
        return work(conn)
