"""`identity migration stats`: counts by state from one covering-index scan."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from identity.db import db
from identity.legacy.models import LegacyUser, MigrationState
from identity.legacy.store import STATS_QUERY, migration_stats


@pytest.fixture
def users(app_ctx):
    db.session.execute(sa.delete(LegacyUser))
    states = [MigrationState.pending] * 50 + [MigrationState.migrated] * 30 + [MigrationState.reset_required] * 20
    db.session.add_all(LegacyUser(kii_user_id=f"stats-{i:04d}", state=state, disabled=(i % 10 == 0))
                       for i, state in enumerate(states))
    db.session.commit()
    yield
    db.session.execute(sa.delete(LegacyUser))
    db.session.commit()


def test_counts(users):
    assert migration_stats(db.engine) == {"pending": 50, "migrated": 30, "reset_required": 20, "disabled": 10,
                                          "total": 100}


def test_cli(users, app):
    result = app.test_cli_runner().invoke(args=["migration", "stats", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["migrated"] == 30


def test_query_uses_the_covering_index(users):
    """The plan, printed and checked: an index-only scan, never a table scan."""
    with db.engine.connect() as conn:
        sql = str(STATS_QUERY.compile(conn, compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "mysql":
            plan = conn.execute(sa.text("EXPLAIN " + sql)).mappings().all()
            print(plan)
            assert len(plan) == 1
            assert plan[0]["key"] == "ix_legacy_users_state_disabled"
            assert "Using index" in plan[0]["Extra"]
            assert plan[0]["type"] == "index"
        else:
            plan = [row[-1] for row in conn.execute(sa.text("EXPLAIN QUERY PLAN " + sql))]
            print(plan)
            assert any("COVERING INDEX ix_legacy_users_state_disabled" in step for step in plan), plan
