"""`legacy_users` has one owner, identity/legacy/store.py: no other module of identity/ inserts,
updates or deletes its rows (Core statements, ORM writes or raw SQL). No servers: the source is read."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import identity

PACKAGE = Path(identity.__file__).parent
OWNERS = {"legacy/store.py", "legacy/models.py"}
WRITES = {"insert", "update", "delete", "bulk_insert_mappings", "bulk_update_mappings", "merge"}
RAW_WRITE = re.compile(r"\b(?:insert\s+(?:ignore\s+)?into|replace\s+into|update|delete\s+from|truncate(?:\s+table)?)"
                       r"\s+[`\"]?legacy_users\b", re.IGNORECASE)


def _names_table(node: ast.AST, aliases: set[str]) -> bool:
    """The model, its table, or a name bound to either."""
    if isinstance(node, ast.Name):
        return node.id in aliases or node.id == "LegacyUser"
    if isinstance(node, ast.Attribute):
        return node.attr in ("LegacyUser", *aliases) or (node.attr == "__table__" and _names_table(node.value, aliases))
    if isinstance(node, ast.Constant):
        return node.value == "legacy_users"
    if isinstance(node, ast.Call):  # sa.table("legacy_users", ...), sa.Table("legacy_users", ...)
        if _accessor(node):  # the store's alias for set operations that read it: a write through it counts
            return True
        return bool(node.args) and isinstance(node.args[0], ast.Constant) and node.args[0].value == "legacy_users"
    return False


def _accessor(node: ast.Call) -> bool:
    """A call of the store's `joinable` (reads through it are the store's own)."""
    return (node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)) == "joinable"


def _chain_names_table(node: ast.AST, aliases: set[str]) -> bool:
    """Whether a chain such as self.table.update, LegacyUser.query.filter_by(...).delete starts at the table."""
    while True:
        if _names_table(node, aliases):
            return True
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            node = node.value
        else:
            return False


def _aliases(tree: ast.AST) -> set[str]:
    aliases = {"USERS"}  # the store's own name for the table, should anyone import it
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("identity.legacy"):
            aliases.update(a.asname for a in node.names if a.asname and a.name in ("LegacyUser", "USERS"))
    changed = True
    while changed:
        changed = False
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, ast.AnnAssign) and node.value else []
            if not targets or not _names_table(node.value, aliases):
                continue
            for target in targets:
                name = target.id if isinstance(target, ast.Name) else \
                    target.attr if isinstance(target, ast.Attribute) else None
                if name and name not in aliases:
                    aliases.add(name)
                    changed = True
    return aliases


def table_writes(source: str) -> list[int]:
    """Line numbers of writes to legacy_users in one module's source."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and RAW_WRITE.search(node.value):
            found.append(node.lineno)
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name == "LegacyUser":
            found.append(node.lineno)  # a new row, for session.add
        elif name in WRITES and node.args and _names_table(node.args[0], aliases):
            found.append(node.lineno)  # sa.insert(LegacyUser), session.bulk_insert_mappings(LegacyUser, ...)
        elif name in WRITES and isinstance(func, ast.Attribute) and _chain_names_table(func.value, aliases):
            found.append(node.lineno)  # USERS.update(), LegacyUser.__table__.delete(), LegacyUser.query...delete()
    return sorted(set(found))


WRITING = [
    "USERS = LegacyUser.__table__\nconn.execute(USERS.update().values(salt=None))",
    "conn.execute(LegacyUser.__table__.insert(), rows)",
    "def f():\n    table = LegacyUser.__table__\n    return table.delete()",
    "class A:\n    def __init__(self):\n        self.t = LegacyUser.__table__\n    def f(self):\n        self.t.insert()",
    "conn.execute(sa.insert(LegacyUser).values(kii_user_id='x'))",
    "conn.execute(sa.delete(LegacyUser.__table__))",
    "db.session.add(LegacyUser(kii_user_id='x'))",
    "LegacyUser.query.filter_by(kii_user_id='x').delete()",
    "from identity.legacy.models import LegacyUser as L\nsa.update(L)",
    "conn.execute(sa.text('DELETE FROM legacy_users WHERE kii_user_id = :k'))",
    "conn.exec_driver_sql('update `legacy_users` set salt = NULL')",
    "conn.execute(sa.table('legacy_users', sa.column('salt')).update())",
    "s = joinable('s')\nconn.execute(s.update().values(salt=None))",
]
READING = [
    "USERS = LegacyUser.__table__\nconn.execute(sa.select(USERS).where(USERS.c.kii_user_id == k))",
    "KEY = re.compile(r\"for key '(?:legacy_users\\.)?([^']+)'\")",
    "plan.updates.append(change)\nRECORDS.insert()",
    "s = joinable('s')\nconn.execute(sa.select(s.c.kii_user_id))",
]


@pytest.mark.parametrize("source", WRITING)
def test_the_scan_sees_each_kind_of_write(source):
    assert table_writes(source), source


@pytest.mark.parametrize("source", READING)
def test_the_scan_leaves_reads_and_other_tables_alone(source):
    assert table_writes(source) == [], source


def test_only_the_legacy_store_writes_legacy_users():
    outside = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative in OWNERS:
            continue
        lines = table_writes(path.read_text(encoding="utf-8"))
        if lines:
            outside[relative] = lines
    assert outside == {}, "legacy_users written outside identity/legacy/store.py (module: lines)"


def table_references(source: str) -> list[int]:
    """Line numbers naming the model or its table at all: reads go through the store too."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and any(a.name in ("LegacyUser", "USERS") for a in node.names):
            found.append(node.lineno)
        elif isinstance(node, (ast.Name, ast.Attribute)) and _names_table(node, set()):
            found.append(node.lineno)
        elif isinstance(node, ast.Call) and _names_table(node, set()) and not _accessor(node):
            found.append(node.lineno)  # sa.table("legacy_users", ...)
    return sorted(set(found))


def test_only_the_legacy_store_reads_legacy_users():
    outside = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative in OWNERS:
            continue
        lines = table_references(path.read_text(encoding="utf-8"))
        if lines:
            outside[relative] = lines
    assert outside == {}, "legacy_users read outside identity/legacy/store.py (module: lines)"
