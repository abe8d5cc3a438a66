"""What `migration verify` expects of each profile line, remembered by the line (`verified_lines`, owned
here).

Working out what Keycloak should hold for a line means parsing it and validating its email and phone
as the import does: most of verify's work. A cut-off delivery repeats almost every line of the one
before byte for byte, and the row verify works out from a line is a pure function of its bytes and the
settings it is read with (`line_key`). So verify stages each line as (line number, userID, key), takes
the rows of lines it has seen before from here in one INSERT ... SELECT, parses only the others, and
remembers those afterwards. Nothing here is read from the store or Keycloak: a remembered row cannot
hide a change in either. A deleted user's row differs from their line's (expected disabled): those
lines are always worked out again and never remembered.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

from identity.db import bulk_loaded, chunks
from identity.importer import reader
from identity.importer.models import VerifiedLine
from identity.importer.plan import line_digest

TABLE = VerifiedLine.__table__
# Raise when what verify expects of a line changes (profile.py's rules, reconcile.compared): every line
# is then worked out again.
VERSION = 1
COLUMNS = tuple(c.name for c in TABLE.columns if c.name not in ("kii_user_id", "digest"))
USER_ID_MAX = TABLE.c.kii_user_id.type.length


def line_key(realm: str, bmp_only: bool, data: bytes) -> str:
    return hashlib.sha1(f"verify-{VERSION}\0{line_digest(realm, bmp_only, data)}".encode()).hexdigest()


def scratch_table(meta: sa.MetaData, name: str) -> sa.Table:
    """A run's staged lines: the key of each readable line that names a userID."""
    return sa.Table(name, meta, sa.Column("line_no", sa.BigInteger, primary_key=True, autoincrement=False),
                    sa.Column("kii_user_id", sa.String(USER_ID_MAX), nullable=False),
                    sa.Column("line_key", sa.String(40), nullable=False))


class ExpectedLines:
    def __init__(self, lines: sa.Table, export: sa.Table, deleted: sa.Table, realm: str, bmp_only: bool):
        self.lines, self.export, self.deleted = lines, export, deleted
        self.realm, self.bmp_only = realm, bmp_only

    def staged(self, line) -> dict | None:
        """A line's staged row; None for a line only parsing can judge."""
        user_id = reader.stageable_user_id(line, USER_ID_MAX)
        if user_id is None:
            return None
        return {"line_no": line.line_no, "kii_user_id": user_id,
                "line_key": line_key(self.realm, self.bmp_only, line.data)}

    def fill(self, conn) -> int:
        """Every staged line seen before, of a user not deleted, into the export table; how many."""
        l, c, e, d = self.lines, TABLE, self.export, self.deleted
        seen = sa.select(l.c.line_no, c.c.kii_user_id, *[c.c[name] for name in COLUMNS],
                         sa.false(), sa.false(), sa.true()) \
            .select_from(l.join(c, sa.and_(c.c.kii_user_id == l.c.kii_user_id, c.c.digest == l.c.line_key))) \
            .where(~sa.exists().where(d.c.kii_user_id == l.c.kii_user_id)) \
            .order_by(l.c.kii_user_id)
        into = ["line_no", "kii_user_id", *COLUMNS, "deleted", "invalid", "remembered"]
        # In the remembered rows' key order, into the still empty export table loaded in bulk: a lookup
        # lands beside the one before, and the rows are sorted by line before they are written. In line
        # order, each lookup and each write landed anywhere in a large table.
        with bulk_loaded(conn):
            return conn.execute(e.insert().from_select(into, seen)).rowcount

    def remember(self, conn) -> None:
        """The rows parsed this run, in place of what was remembered for their users. Lines refused as
        duplicates are left out: each userID keeps at most one row."""
        l, c, e = self.lines, TABLE, self.export
        parsed = sa.and_(~e.c.remembered, ~e.c.invalid, ~e.c.deleted)
        # By the few userIDs themselves: MariaDB would walk the whole table for an IN (subquery) in a DELETE.
        for chunk in chunks(list(conn.execute(sa.select(e.c.kii_user_id).where(parsed)).scalars())):
            conn.execute(c.delete().where(c.c.kii_user_id.in_(chunk)))
        rows = sa.select(e.c.kii_user_id, l.c.line_key, *[e.c[name] for name in COLUMNS]) \
            .select_from(e.join(l, l.c.line_no == e.c.line_no)).where(parsed)
        conn.execute(c.insert().from_select(["kii_user_id", "digest", *COLUMNS], rows))
