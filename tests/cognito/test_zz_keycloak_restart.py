"""Keycloak stopped in the middle of the run and started again: errors while it is down, service resumes alone.

Named to run after the other sign-in tests; the Keycloak it restarts is the one
the suite started (scripts/keycloak.sh), whose dev-file database keeps the realm.
"""

from __future__ import annotations

import subprocess
import time

import requests
from botocore.exceptions import ClientError

from identity.legacy.models import MigrationState
from tests.cognito.fixtures import store_row
from tests.cognito.test_sign_in import sign_in
from tests.conftest import ROOT


def keycloak(command: str) -> None:
    subprocess.run([str(ROOT / "scripts" / "keycloak.sh"), command], check=True, timeout=600)


def test_keycloak_restart(cognito, live_service, legacy_user, kc_user):
    native = kc_user(password="Native-Pass-1")
    pending = legacy_user()
    assert sign_in(cognito, native["username"], "Native-Pass-1")["AuthenticationResult"]

    keycloak("stop")
    try:
        for username, password in ((native["username"], "Native-Pass-1"), (pending["username"], pending["password"])):
            started = time.monotonic()
            try:
                sign_in(cognito, username, password)
                raise AssertionError("signed in without Keycloak")
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "InternalErrorException"
            assert time.monotonic() - started < 15
        # The service itself still answers, and names Keycloak as what it waits for.
        assert requests.get(live_service["url"] + "/healthz", timeout=10).json() == {"status": "ok"}
        ready = requests.get(live_service["url"] + "/readyz", timeout=10)
        assert (ready.status_code, ready.json()) == (503, {"status": "unavailable", "checks": {
            "database": "ok", "keycloak": "unreachable (ConnectionError)"}})
        row = store_row(live_service["app"], pending["kii_user_id"])
        assert row.state == MigrationState.pending and row.password_hash  # nothing changed
    finally:
        keycloak("start")
        keycloak("wait")

    # Back without restarting the service: both sign in, the Kii user migrates now. Keycloak's JVM
    # is cold at first (its first answers can outlast the service's timeout): a minute to recover.
    deadline = time.monotonic() + 60
    while True:
        try:
            assert sign_in(cognito, native["username"], "Native-Pass-1")["AuthenticationResult"]
            break
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "InternalErrorException" or time.monotonic() > deadline:
                raise
            time.sleep(1)
    assert sign_in(cognito, pending["username"], pending["password"])["AuthenticationResult"]
    assert store_row(live_service["app"], pending["kii_user_id"]).state == MigrationState.migrated
