"""Shared fixtures: a real Keycloak (started when none runs), a test realm, a migrated database.

The suite runs against whatever `IDENTITY_TEST_DATABASE_URL` names (MariaDB
in CI), or a fresh SQLite file. Keycloak is the real server from
scripts/keycloak.sh; tests use their own realm so `make run`'s realm is
left alone.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

from tests.used_secrets import remember

ROOT = Path(__file__).resolve().parent.parent

# Property tests: the same examples on every run by default, so `make test` (and CI) passes or fails
# on the code, not on the draw; HYPOTHESIS_PROFILE=explore draws new ones on each run, to hunt bugs.
settings.register_profile("repeatable", derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
# The live service, SMTP server and legacy-user fixtures, and the browser, shared by the test packages.
pytest_plugins = ["tests.cognito.fixtures", "tests.browser", "tests.session_checks", "tests.keycloak_mariadb"]
TEST_REALM = os.environ.get("IDENTITY_TEST_REALM", "china-test")
SECRET_SETTING = re.compile(r"SECRET|PASSWORD|HASH_KEY")


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@pytest.fixture(scope="session")
def dev_env() -> dict[str, str]:
    """The local secrets (scripts/dev-env.sh makes them once per machine)."""
    env_file = ROOT / "var" / "dev.env"
    subprocess.run([str(ROOT / "scripts" / "dev-env.sh"), str(env_file)], check=True)
    values = read_env_file(env_file)
    remember(*(v for k, v in values.items() if SECRET_SETTING.search(k)))
    return values


@pytest.fixture(scope="session", autouse=True)
def suite_logs(tmp_path_factory):
    """The service's log lines of the whole suite, formatted and redacted as in production, in a file
    under the suite's temporary directory (the session's secrets scan, tests/session_checks.py, reads
    it, every *.log and report there). Keycloak's log is read from where it stood when the suite began."""
    from identity.logs import json_handler

    directory = tmp_path_factory.mktemp("suite-logs")
    handler = json_handler(logging.FileHandler(directory / "service.log", encoding="utf-8"))
    handler.setLevel(logging.INFO)
    logging.getLogger().addHandler(handler)
    keycloak_log = ROOT / "var" / "keycloak.log"
    start = keycloak_log.stat().st_size if keycloak_log.exists() else 0
    from tests import secrets_scan

    secrets_scan.SESSION.update(base=tmp_path_factory.getbasetemp(), keycloak_log=keycloak_log, keycloak_from=start)
    yield secrets_scan.SESSION
    logging.getLogger().removeHandler(handler)
    handler.close()


@pytest.fixture(scope="session")
def keycloak_url(dev_env) -> str:
    """A running Keycloak: started by scripts/keycloak.sh when none answers yet."""
    subprocess.run([str(ROOT / "scripts" / "keycloak.sh"), "ensure"], check=True)
    return "http://127.0.0.1:" + os.environ.get("KEYCLOAK_HTTP_PORT", "8080")


@pytest.fixture(scope="session")
def live_socket():
    """The socket of the suite's live service, bound now (so no other fixture takes its port) because
    the realm, bootstrapped before the service starts, names that port as the bridge's."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


@pytest.fixture(scope="session")
def live_port(live_socket) -> int:
    return live_socket.getsockname()[1]


SECRET_CLIENT = "backend-app"  # the confidential app client (IDENTITY_APP_CLIENT_SECRETS) the bootstrap makes


@pytest.fixture(scope="session")
def bootstrap_settings(keycloak_url, dev_env, live_port, smtp):
    import secrets

    from identity.keycloak.bootstrap import Settings

    client_secret = secrets.token_hex(20)
    remember(client_secret)
    return Settings(
        app_client_secrets={SECRET_CLIENT: client_secret},
        bridge_url=f"http://127.0.0.1:{live_port}/bridge/v1", smtp_port=smtp.port,
        server_url=keycloak_url, realm=TEST_REALM, app_client_id="mobile",
        app_redirect_uris=["http://127.0.0.1:8000/oauth2/idpresponse", "com.example.app://callback"],
        admin_client_id="identity-service",
        admin_client_secret=dev_env["IDENTITY_KEYCLOAK_ADMIN_CLIENT_SECRET"],
    )


@pytest.fixture(scope="session")
def master_admin(bootstrap_settings, dev_env):
    from identity.keycloak.bootstrap import connect

    return connect(bootstrap_settings, dev_env["KC_BOOTSTRAP_ADMIN_USERNAME"],
                   dev_env["KC_BOOTSTRAP_ADMIN_PASSWORD"])


@pytest.fixture(scope="session")
def first_bootstrap(master_admin, bootstrap_settings) -> list[str]:
    """The test realm, made from nothing by the bootstrap: its change list."""
    from identity.keycloak.bootstrap import bootstrap

    if any(r["realm"] == TEST_REALM for r in master_admin.get_realms()):
        master_admin.delete_realm(TEST_REALM)
    changes = bootstrap(master_admin, bootstrap_settings)
    master_admin.change_current_realm(TEST_REALM)
    return changes


@pytest.fixture(scope="session")
def realm(first_bootstrap, bootstrap_settings):
    return bootstrap_settings


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("IDENTITY_TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'identity.db'}"
    # A clean slate on a shared server: drop what an earlier run left.
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    metadata.reflect(engine)
    metadata.drop_all(engine)
    engine.dispose()
    return url


def make_config(realm, database_url, **overrides) -> dict:
    remember(realm.admin_client_secret, *(v for k, v in overrides.items() if SECRET_SETTING.search(k)))
    config = {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "KEYCLOAK_URL": realm.server_url,
        "KEYCLOAK_REALM": realm.realm,
        "KEYCLOAK_APP_CLIENT_ID": realm.app_client_id,
        "KEYCLOAK_ADMIN_CLIENT_ID": realm.admin_client_id,
        "KEYCLOAK_ADMIN_CLIENT_SECRET": realm.admin_client_secret,
        "BRIDGE_URL": realm.bridge_url,
        "SMTP_HOST": realm.smtp_host, "SMTP_PORT": realm.smtp_port,
        "KEYCLOAK_PROXY": True,  # Keycloak's browser paths on the service's origin, as `make run` has them
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def app(realm, database_url):
    import flask_migrate

    from identity import create_app

    app = create_app(make_config(realm, database_url))
    with app.app_context():
        flask_migrate.upgrade()
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield app


def create_user(admin, payload: dict) -> str:
    """Create a user as the importer does (partialImport): kii_user_id and the migration state are
    read-only in the realm's user profile, so the Admin API's POST /users would drop them."""
    payload = {"id": str(uuid.uuid4()), **payload}
    response = admin.connection.raw_post(f"admin/realms/{admin.connection.realm_name}/partialImport",
                                         data=json.dumps({"ifResourceExists": "FAIL", "users": [payload]}))
    assert response.status_code == 200, response.text
    return payload["id"]


@pytest.fixture
def kc_user(master_admin):
    """Make Keycloak users for a test and delete them afterwards."""
    made = []

    def make(**fields) -> dict:
        master_admin.change_current_realm(TEST_REALM)
        username = fields.pop("username", f"user-{uuid.uuid4().hex[:12]}")
        password = fields.pop("password", None)
        remember(password)
        payload = {"username": username, "enabled": True, **fields}
        if password:
            payload["credentials"] = [{"type": "password", "value": password, "temporary": False}]
        user_id = create_user(master_admin, payload)
        made.append(user_id)
        return {"id": user_id, "username": username, "password": password}

    yield make
    master_admin.change_current_realm(TEST_REALM)
    for user_id in made:
        master_admin.delete_user(user_id)


def password_grant(keycloak_url, realm_name, client_id, username, password) -> dict:
    response = requests.post(
        f"{keycloak_url}/realms/{realm_name}/protocol/openid-connect/token",
        data={"grant_type": "password", "client_id": client_id, "username": username,
              "password": password, "scope": "openid"},
        timeout=30)
    assert response.status_code == 200, response.text
    return response.json()
