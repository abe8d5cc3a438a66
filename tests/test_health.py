"""/healthz and /readyz against the real Keycloak and database, and with each one gone."""

from __future__ import annotations

import socket

from identity import create_app
from tests.conftest import make_config


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_when_everything_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"] == {"database": "ok", "keycloak": "ok"}


def test_readyz_names_unreachable_keycloak(realm, database_url):
    app = create_app(make_config(realm, database_url, KEYCLOAK_URL=f"http://127.0.0.1:{closed_port()}"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["keycloak"].startswith("unreachable")


def test_readyz_names_missing_realm(realm, database_url):
    app = create_app(make_config(realm, database_url, KEYCLOAK_REALM="no-such-realm"))
    body = app.test_client().get("/readyz").get_json()
    assert body["checks"]["keycloak"] == "realm not served (HTTP 404)"


def test_readyz_names_unreachable_database_without_its_password(realm):
    url = f"mysql+pymysql://identity:s3cret-in-url@127.0.0.1:{closed_port()}/identity"
    app = create_app(make_config(realm, url))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"].startswith("unreachable")
    assert b"s3cret-in-url" not in response.data
