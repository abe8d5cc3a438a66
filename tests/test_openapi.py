"""schemathesis against the live service, from docs/openapi.yaml: hostile and random requests to
every operation, with a fixed example budget. No 5xx, no stack trace, no secret in any answer, and
the operations that need credentials refuse requests without them."""

from __future__ import annotations

import threading

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import ignored_auth
from werkzeug.serving import make_server

from tests.cognito.fixtures import SECRET_CLIENT, free_port, live_app
from tests.conftest import ROOT

schemathesis.serializer.alias("application/x-amz-json-1.1", "application/json")  # Cognito's JSON 1.1
schema = schemathesis.openapi.from_path(ROOT / "docs" / "openapi.yaml")
EXAMPLES = 40  # per operation; derandomized, so every run sends the same requests
LEAKS = ("Traceback (most recent call last)", 'File "/', "sqlalchemy.", "pymysql.", "werkzeug.exceptions",
         "$argon2", "$2b$", "$sha256$", "{SSHA}")


@pytest.fixture(scope="module")
def fuzz_target(app, realm, database_url, secret_client, smtp, dev_env):  # app: the schema migrated
    port = free_port()
    app = live_app(realm, database_url, port, APP_CLIENT_SECRETS={SECRET_CLIENT: secret_client},
                   SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port, BRIDGE_SECRET=dev_env["IDENTITY_BRIDGE_SECRET"],
                   # Its own client address (X-Forwarded-For), so its refusals count against no other test.
                   TRUSTED_PROXIES=1, IP_FAILURE_LIMIT=100000, FAILED_SIGN_IN_FLOOR_MS=0)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    cfg = app.config
    secrets = [s for s in (cfg["LEGACY_HASH_KEY"], cfg["BRIDGE_SECRET"], cfg["KEYCLOAK_ADMIN_CLIENT_SECRET"],
                           cfg["SECRET_KEY"], secret_client) if s]
    yield {"url": f"http://127.0.0.1:{port}", "secrets": secrets}
    server.shutdown()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_error_no_leak(case, fuzz_target):
    response = case.call_and_validate(base_url=fuzz_target["url"], headers={"X-Forwarded-For": "198.51.100.23"},
                                      checks=[not_a_server_error, ignored_auth], timeout=30)
    text = response.text
    for marker in LEAKS + tuple(fuzz_target["secrets"]):
        assert marker not in text, f"{case.operation.label} answered with a leak ({marker[:4]}...)"
    if case.path == "/" and response.status_code >= 400:
        body = response.json()
        assert set(body) == {"__type", "message"}
        assert response.headers["x-amzn-errortype"] == [body["__type"] + ":"]  # schemathesis: lower case, lists


def test_every_operation_is_described():
    import yaml

    from identity.cognito.api import OPERATIONS, TARGET_PREFIX

    document = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    described = document["paths"]["/"]["post"]["parameters"][0]["schema"]["enum"]
    assert sorted(described) == sorted(TARGET_PREFIX + name for name in OPERATIONS)
