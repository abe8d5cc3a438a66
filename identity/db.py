"""The SQLAlchemy extension and the Alembic wiring (schema lives in migrations/ only)."""

from pathlib import Path

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

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


def init_app(app) -> None:
    db.init_app(app)
    # render_as_batch: SQLite cannot ALTER most things; batch mode copies the table instead.
    migrate.init_app(app, db, render_as_batch=True, compare_type=True)
