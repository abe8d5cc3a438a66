"""Queries over the legacy store that more than one part of the service needs."""

from __future__ import annotations

import sqlalchemy as sa

from identity.legacy.models import LegacyUser, MigrationState

USERS = LegacyUser.__table__

# Answered from ix_legacy_users_state_disabled alone (a covering index scan), so it stays
# cheap on millions of rows; tests/legacy/test_store.py shows the plan.
STATS_QUERY = sa.select(USERS.c.state, USERS.c.disabled, sa.func.count().label("n")).group_by(
    USERS.c.state, USERS.c.disabled)


def migration_stats(engine: sa.Engine) -> dict[str, int]:
    stats = {state.value: 0 for state in MigrationState}
    stats["disabled"] = 0
    with engine.connect() as conn:
        for state, disabled, count in conn.execute(STATS_QUERY):
            stats[getattr(state, "value", state)] += count
            if disabled:
                stats["disabled"] += count
    stats["total"] = sum(stats[s.value] for s in MigrationState)
    return stats
