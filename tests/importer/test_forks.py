"""Work forked off to another process (forks.py): it runs there, on connections of its own, and its
answer or its error comes back."""

import os

import pytest
import sqlalchemy as sa

from identity.importer.forks import forked


class Target:
    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def where(self, label: str) -> tuple[str, int]:
        with self.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
        return label, os.getpid()

    def fail(self) -> None:
        raise ValueError("refused")


def test_a_call_runs_in_a_forked_process_and_the_parents_connections_stay_usable(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db'}")
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))  # a pooled connection the worker inherits
    with forked(Target(engine), engine, 1) as submit:
        label, pid = submit("where", "a").result()
    assert label == "a" and pid != os.getpid()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 2")).scalar() == 2


def test_an_error_in_the_worker_is_raised_to_the_caller(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db'}")
    with forked(Target(engine), engine, 1) as submit, pytest.raises(ValueError, match="refused"):
        submit("fail").result()
