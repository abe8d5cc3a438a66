"""The cluster of scripts/cluster.py for this package's tests: two Keycloak nodes on MariaDB, two
gunicorn services, nginx. Started once for the package (or found running: `make cluster`) and stopped
after it when this run started it.

Besides the cluster's own services (which reach Keycloak through the internal balancer), a test may
pin a service to one node: `service_on(0)` is the service's app configured with node 1 as its
Keycloak, served on a loopback port, on the cluster's store. What one node did, the other must see:
that is what the tests ask."""

from __future__ import annotations

import hashlib
import sys
import threading
import time
import uuid

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from werkzeug.serving import make_server

from tests.cognito.fixtures import free_port
from tests.conftest import ROOT
from tests.used_secrets import remember

sys.path.insert(0, str(ROOT / "scripts"))
from cluster import REALM, Cluster  # noqa: E402


@pytest.fixture(scope="package")
def cluster():
    cluster = Cluster()
    running = all(cluster.node_pid(node) for node in cluster.ports.nodes)
    cluster.start()
    remember(*(value for key, value in cluster.secrets().items() if "SECRET" in key or "PASSWORD" in key
               or "KEY" in key))
    try:
        yield cluster
    finally:
        if not running:
            cluster.stop()


def service_config(cluster: Cluster, keycloak_url: str) -> dict:
    """The service's settings as the cluster runs it, with `keycloak_url` as its Keycloak."""
    env = cluster.identity_env(keycloak_url)
    return {"TESTING": True, "DATABASE_URL": env["IDENTITY_DATABASE_URL"], "KEYCLOAK_URL": keycloak_url,
            "KEYCLOAK_REALM": REALM, "KEYCLOAK_ADMIN_CLIENT_SECRET": env["IDENTITY_KEYCLOAK_ADMIN_CLIENT_SECRET"],
            "SECRET_KEY": env["IDENTITY_SECRET_KEY"], "BRIDGE_SECRET": env["IDENTITY_BRIDGE_SECRET"],
            "LEGACY_HASH_KEY": env["IDENTITY_LEGACY_HASH_KEY"], "PUBLIC_BASE_URL": cluster.public_url,
            "BRIDGE_URL": env["IDENTITY_BRIDGE_URL"], "USER_POOL_ID": env["IDENTITY_USER_POOL_ID"],
            "KEYCLOAK_PROXY": False, "IP_FAILURE_LIMIT": 100000, "LOG_LEVEL": "WARNING"}


@pytest.fixture(scope="package")
def service_on(cluster):
    """service_on(i, **settings): {"app", "url", "cognito"} of a service pinned to node i (with these
    settings besides the cluster's), started once."""
    from identity import create_app

    started: dict[tuple, dict] = {}
    servers = []

    def get(index: int, **settings) -> dict:
        key = (index, *sorted(settings.items()))
        if key not in started:
            app = create_app({**service_config(cluster, cluster.ports.nodes[index].url), **settings})
            port = free_port()
            server = make_server("127.0.0.1", port, app, threaded=True)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)
            url = f"http://127.0.0.1:{port}"
            started[key] = {"app": app, "url": url, "cognito": cognito_client(url)}
        return started[key]

    yield get
    for server in servers:
        server.shutdown()


def cognito_client(url: str, **config):
    return boto3.client("cognito-idp", region_name="cn-north-1", endpoint_url=url,
                        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 0}, **config))


@pytest.fixture(scope="package")
def node_admin(cluster):
    """node_admin(i): python-keycloak's admin of the cluster's realm through node i (master admin)."""
    from keycloak import KeycloakAdmin

    secret = cluster.secrets()
    admins = {}

    def get(index: int):
        if index not in admins:
            admins[index] = KeycloakAdmin(server_url=cluster.ports.nodes[index].url, realm_name=REALM,
                                          user_realm_name="master", username=secret["KC_BOOTSTRAP_ADMIN_USERNAME"],
                                          password=secret["KC_BOOTSTRAP_ADMIN_PASSWORD"])
        return admins[index]

    return get


@pytest.fixture
def kii_user(service_on, node_admin):
    """kii_user(password): a Kii user as the import leaves one, made through node 1: in Keycloak without
    a password, its hash pending in the cluster's store."""
    from identity.db import db
    from identity.legacy import hashes
    from identity.legacy.models import LegacyUser, MigrationState

    def make(password: str = "Kii-Cluster-Pass-1") -> dict:
        kii_id, username = f"kii-{uuid.uuid4().hex[:12]}", f"cluster-{uuid.uuid4().hex[:10]}"
        user_id = node_admin(0).create_user({"username": username, "enabled": True, "attributes": {
            "kii_user_id": [kii_id], "migration_state": ["pending"],
            "migration_state_changed_at": [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())]}})
        encoded = "$sha256$" + hashes.b64encode(hashlib.sha256(password.encode()).digest())
        remember(password, encoded, encoded.rsplit("$", 1)[-1])
        with service_on(0)["app"].app_context():
            db.session.add(LegacyUser(kii_user_id=kii_id, keycloak_user_id=user_id, username=username,
                                      state=MigrationState.pending, password_hash=encoded))
            db.session.commit()
        return {"kii_user_id": kii_id, "id": user_id, "username": username, "password": password}

    return make
