"""The schema lives in migrations/ only, and the models must agree with it.

This is the check that would have caught cut-over night's missing index:
Alembic's autogenerate comparison between the migrated database and the
models' metadata must find nothing.
"""

from __future__ import annotations

import flask_migrate
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from identity.db import db


def drift(connection) -> list:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, db.metadata)


def test_models_match_migrations(app_ctx):
    with db.engine.connect() as connection:
        assert drift(connection) == []


def test_drift_check_catches_a_missing_index(app_ctx):
    """Remove an index the model declares: the same comparison must report it."""
    with db.engine.begin() as connection:
        connection.execute(sa.text("DROP INDEX ix_legacy_users_email" +
                                   (" ON legacy_users" if connection.dialect.name == "mysql" else "")))
    try:
        with db.engine.connect() as connection:
            found = drift(connection)
        assert any(op[0] == "add_index" and op[1].name == "ix_legacy_users_email" for op in found), found
    finally:
        with db.engine.begin() as connection:
            connection.execute(sa.text("CREATE UNIQUE INDEX ix_legacy_users_email ON legacy_users (email)"))
    with db.engine.connect() as connection:
        assert drift(connection) == []


def test_lookup_columns_are_indexed(app_ctx):
    inspector = sa.inspect(db.engine)
    indexed = {tuple(ix["column_names"]) for ix in inspector.get_indexes("legacy_users")}
    for column in ("username", "email", "phone_number", "keycloak_user_id"):
        assert (column,) in indexed
    assert ("state", "disabled") in indexed
    for table in ("import_records", "import_unchanged"):   # the ledger asks which userIDs a run named
        assert ("run_id", "kii_user_id") in {tuple(ix["column_names"]) for ix in inspector.get_indexes(table)}


def test_downgrade_and_upgrade_round_trip(app_ctx):
    flask_migrate.downgrade(revision="base")
    assert "legacy_users" not in sa.inspect(db.engine).get_table_names()
    flask_migrate.upgrade()
    with db.engine.connect() as connection:
        assert drift(connection) == []
