"""A second Keycloak of the pinned version, in production mode on MariaDB (a plugin of tests/conftest.py):
for what only a real database shows, such as query plans. Started once for the session by
scripts/keycloak.sh as its own instance and ports, on a database made fresh for it; stopped at the end."""

from __future__ import annotations

import os
import secrets
import subprocess

import pytest

from tests.conftest import ROOT
from tests.used_secrets import remember

HTTP_PORT, MGMT_PORT = 18480, 19480
DATABASE = "keycloak_suite"


def mysql(sql: str) -> None:
    subprocess.run(["mysql", "-uroot", "-e", sql], check=True)


@pytest.fixture(scope="session")
def keycloak_mariadb(bootstrap_settings):
    """(server URL, master admin username, its password) of the MariaDB-backed Keycloak."""
    db_password, admin_password = secrets.token_hex(16), secrets.token_urlsafe(18)
    remember(db_password, admin_password)
    env = {**os.environ, "KEYCLOAK_INSTANCE": "suite-mariadb", "KEYCLOAK_HTTP_PORT": str(HTTP_PORT),
           "KEYCLOAK_MGMT_PORT": str(MGMT_PORT), "KEYCLOAK_ENV_FILE": "/nonexistent",
           "KC_DB": "mariadb", "KC_DB_URL": f"jdbc:mariadb://127.0.0.1:3306/{DATABASE}",
           "KC_DB_USERNAME": "kcsuite", "KC_DB_PASSWORD": db_password,
           "KC_BOOTSTRAP_ADMIN_USERNAME": "admin", "KC_BOOTSTRAP_ADMIN_PASSWORD": admin_password}
    script = str(ROOT / "scripts" / "keycloak.sh")
    subprocess.run([script, "stop"], env=env, check=True)
    mysql(f"DROP DATABASE IF EXISTS {DATABASE}; CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4 "
          f"COLLATE utf8mb4_unicode_ci; "
          + " ".join(f"CREATE OR REPLACE USER 'kcsuite'@'{host}' IDENTIFIED BY '{db_password}'; "
                     f"GRANT ALL ON {DATABASE}.* TO 'kcsuite'@'{host}';" for host in ("127.0.0.1", "localhost")))
    subprocess.run([script, "ensure"], env=env, check=True)
    try:
        yield f"http://127.0.0.1:{HTTP_PORT}", "admin", admin_password
    finally:
        subprocess.run([script, "stop"], env=env, check=True)
        mysql(f"DROP DATABASE IF EXISTS {DATABASE}")


def tables(plan) -> list[dict]:
    """Every table access in a MariaDB EXPLAIN FORMAT=JSON plan."""
    found = []
    if isinstance(plan, dict):
        if "table_name" in plan:
            found.append(plan)
        for value in plan.values():
            found += tables(value)
    elif isinstance(plan, list):
        for value in plan:
            found += tables(value)
    return found
