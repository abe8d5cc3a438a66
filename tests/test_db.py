"""Two processes writing the same missing row at once, on MariaDB: each writer's update locks the gap
where the row would go, both inserts then wait on each other, and InnoDB ends one transaction whole,
its savepoint with it. The loser must count again, not answer 500.

The race is played out step by step on two connections rather than left to chance: a rival
transaction (made the heavier one, so InnoDB picks the writer under test as its victim) locks the
gap, the writer's insert waits on it, the rival's insert closes the cycle.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from identity.cognito.models import ClientFailure
from identity.cognito.throttle import ClientThrottle
from identity.legacy.models import utcnow
from identity.signin.models import PendingSoftwareToken, SrpVerifier
from identity.signin.software_tokens import PendingSecrets
from identity.signin.verifiers import Verifiers

BALLAST_ROWS = 200  # the rival's extra undo records: InnoDB rolls back the lighter transaction


@pytest.fixture
def engine(app, database_url):
    if not database_url.startswith("mysql"):
        pytest.skip("gap locks and deadlocks are InnoDB's: this race needs MariaDB")
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS race_ballast (n INT PRIMARY KEY) ENGINE=InnoDB"))
    yield engine
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE race_ballast"))
    engine.dispose()


def waiting(engine, table: sa.Table, verb: str = "") -> bool:
    """Whether another connection's statement `verb`ing `table` is running: on a table of a few rows,
    only a lock holds one. (The processlist shows a user's own threads without the PROCESS privilege.)"""
    with engine.connect() as conn:
        return bool(conn.execute(sa.text(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()"
            " AND COMMAND = 'Query' AND INFO LIKE :verb AND INFO LIKE :table"),
            {"verb": f"{verb}%", "table": f"% {table.name} %"}).scalar())


def until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the writer never reached the rival's lock"
        time.sleep(0.02)


def lose_the_race(engine, table: sa.Table, key: dict, row: dict, write) -> None:
    """Run `write()` (which writes the row `key` names) against a rival writing the same row, arranged
    so that InnoDB ends `write`'s transaction in a deadlock; the rival commits afterwards."""
    errors: list[BaseException] = []

    def writer():
        try:
            write()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    with engine.connect() as rival:
        rival.execute(sa.text("INSERT INTO race_ballast (n) VALUES " + ",".join(
            f"({n})" for n in range(BALLAST_ROWS))))
        where = sa.and_(*(table.c[name] == value for name, value in key.items()))
        assert rival.execute(table.update().where(where).values(**row)).rowcount == 0  # the gap, locked
        thread = threading.Thread(target=writer)
        thread.start()
        until(lambda: waiting(engine, table, "INSERT INTO"))  # the writer's insert waits on the rival's gap
        rival.execute(table.insert().values(**key, **row))  # ... and the rival's on the writer's: deadlock
        until(lambda: not thread.is_alive() or waiting(engine, table))  # its second run, on the rival's row
        rival.commit()
    thread.join(10)
    assert not thread.is_alive()
    assert errors == [], f"the writer that lost the race failed: {errors[0]!r}" if errors else ""


def test_a_failure_counted_against_a_racing_first_failure_is_counted_not_a_500(engine):
    throttle, key = ClientThrottle(engine, limit=5, window_seconds=600), f"198.51.100.{uuid.uuid4().hex[:8]}"
    table = ClientFailure.__table__
    lose_the_race(engine, table, {"client_key": key}, {"failures": 1, "window_started_at": utcnow()},
                  lambda: throttle.failure(key))
    with engine.connect() as conn:
        failures = conn.execute(sa.select(table.c.failures).where(table.c.client_key == key)).scalar()
    assert failures == 2  # the rival's and the writer's, counted again after its transaction was ended


def test_a_verifier_written_against_a_racing_one_is_kept_not_a_500(engine):
    verifiers, user = Verifiers(engine, "cn-north-1_china", b"m" * 32), str(uuid.uuid4())
    table = SrpVerifier.__table__
    rival = {"username": "rival", "pool": verifiers.pool, "salt": "00", "verifier": "00", "password_mac": "00",
             "credential_id": None, "updated_at": utcnow()}
    lose_the_race(engine, table, {"keycloak_user_id": user}, rival,
                  lambda: verifiers.remember(user, "racer", "Correct-Horse-7", lambda: "credential-1"))
    with engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.keycloak_user_id == user)).mappings().one()
    assert (row["username"], row["credential_id"]) == ("racer", "credential-1")  # written after the rival's


def test_a_pending_secret_held_against_a_racing_one_is_held_not_a_500(engine):
    secrets, user = PendingSecrets(engine, b"s" * 32), str(uuid.uuid4())
    table = PendingSoftwareToken.__table__
    lose_the_race(engine, table, {"keycloak_user_id": user},
                  {"sealed_secret": "rival", "expires_at": utcnow() + timedelta(minutes=5)},
                  lambda: secrets.hold(user, "ABCDEFGHIJKLMNOPQRST"))
    assert secrets.get(user) == "ABCDEFGHIJKLMNOPQRST"  # the writer's, held after the rival's


def bulk_operations(engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SHOW GLOBAL STATUS LIKE 'Innodb_bulk_operations'").one()[1])


def test_a_bulk_load_into_an_empty_table_goes_through_innodbs_bulk_path_and_leaves_the_checks_on(engine):
    """What `bulk_loaded` promises verify's fill: InnoDB counts the insert as a bulk operation (its rows
    sorted and each index built a page at a time), and the connection goes back to the pool with its
    unique and foreign key checks on."""
    from identity.db import bulk_loaded

    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE bulk_target (n INT PRIMARY KEY, v VARCHAR(8)) ENGINE=InnoDB"))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO race_ballast SELECT seq FROM seq_1_to_100"))
        before = bulk_operations(engine)
        with engine.connect() as conn:
            with conn.begin(), bulk_loaded(conn):
                conn.execute(sa.text("INSERT INTO bulk_target SELECT n, 'x' FROM race_ballast"))
            assert bulk_operations(engine) > before
            assert conn.exec_driver_sql("SELECT @@unique_checks, @@foreign_key_checks").one() == (1, 1)
            assert conn.exec_driver_sql("SELECT count(*) FROM bulk_target").scalar() == \
                conn.exec_driver_sql("SELECT count(*) FROM race_ballast").scalar()
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE bulk_target"))
