"""A second Keycloak of the pinned version, in production mode on MariaDB (a plugin of tests/conftest.py):
for what only a real database shows, such as query plans. Started once for the session by
scripts/keycloak.sh as its own instance and ports, on a database made fresh for it; stopped at the end."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess

import pytest

from tests.conftest import ROOT
from tests.used_secrets import remember

DATABASE = "keycloak_suite"


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now, held open together so that they differ. Fixed ports let a Keycloak an
    interrupted suite left running (another checkout's, its database dropped under it) answer for this one:
    scripts/keycloak.sh takes a Keycloak already answering as started, and the suite's requests got 500s."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def mysql(sql: str) -> None:
    subprocess.run(["mysql", "-uroot", "-e", sql], check=True)


@pytest.fixture(scope="session")
def keycloak_mariadb(bootstrap_settings):
    """(server URL, master admin username, its password) of the MariaDB-backed Keycloak."""
    db_password, admin_password = secrets.token_hex(16), secrets.token_urlsafe(18)
    http_port, mgmt_port = free_ports(2)
    remember(db_password, admin_password)
    env = {**os.environ, "KEYCLOAK_INSTANCE": "suite-mariadb", "KEYCLOAK_HTTP_PORT": str(http_port),
           "KEYCLOAK_MGMT_PORT": str(mgmt_port), "KEYCLOAK_ENV_FILE": "/nonexistent",
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
        yield f"http://127.0.0.1:{http_port}", "admin", admin_password
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
