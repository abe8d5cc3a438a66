"""First-login migration: exactly once under concurrency (gunicorn, 4 workers), and safe at every crash point."""

from __future__ import annotations

import json
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from identity.legacy.models import MigrationState
from tests.cognito.fixtures import free_port, live_app, store_row

TARGET = {"X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth"}


def initiate(client, username, password):
    return client.post("/", json={"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "mobile",
                                  "AuthParameters": {"USERNAME": username, "PASSWORD": password}}, headers=TARGET)


@pytest.mark.parametrize("failpoint", ["after_hash_check", "after_keycloak_set", "before_commit"])
def test_a_crash_at_any_step_loses_nothing(failpoint, app, realm, database_url, legacy_user, live_service,
                                           master_admin):
    user = legacy_user(password="Kii-Crash-Pass-1")
    crashing = live_app(realm, database_url, free_port(), FAILPOINTS=frozenset({failpoint}))
    response = initiate(crashing.test_client(), user["username"], "Kii-Crash-Pass-1")
    assert (response.status_code, json.loads(response.data)["__type"]) == (500, "InternalErrorException")

    row = store_row(app, user["kii_user_id"])
    assert row.state == MigrationState.pending and row.password_hash, "the legacy hash outlives the crash"
    held = [c["type"] for c in master_admin.get_credentials(user["id"])]
    assert held == ([] if failpoint == "after_hash_check" else ["password"])

    # The next attempt with the same password completes the migration.
    response = initiate(live_service["app"].test_client(), user["username"], "Kii-Crash-Pass-1")
    assert response.status_code == 200, response.data
    row = store_row(app, user["kii_user_id"])
    assert row.state == MigrationState.migrated and row.password_hash is None
    assert [c["type"] for c in master_admin.get_credentials(user["id"])] == ["password"]


@pytest.fixture
def gunicorn(start_gunicorn):
    return start_gunicorn(workers=4)


def test_parallel_first_sign_ins_migrate_exactly_once(gunicorn, legacy_user, app, master_admin):
    client = boto3.client("cognito-idp", region_name="cn-north-1", endpoint_url=gunicorn["url"],
                          config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1},
                                        max_pool_connections=40))
    users = [legacy_user(password=f"Kii-Parallel-{i}") for i in range(4)]

    def attempt(args):
        user, password = args
        try:
            client.initiate_auth(AuthFlow="USER_PASSWORD_AUTH", ClientId="mobile",
                                 AuthParameters={"USERNAME": user["username"], "PASSWORD": password})
            return user["kii_user_id"], password == user["password"], "ok"
        except ClientError as exc:
            return user["kii_user_id"], password == user["password"], exc.response["Error"]["Code"]

    jobs = []
    for user in users:
        jobs += [(user, user["password"])] * 17 + [(user, "wrong-password")] * 3
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(attempt, jobs))

    for kii_user_id, right, outcome in results:
        assert outcome == ("ok" if right else "NotAuthorizedException"), (kii_user_id, right, outcome)
    migrated_lines = Counter()
    workers = set()
    for line in gunicorn["log"].read_text().splitlines():
        if '"legacy password migrated"' in line:
            # A regex, not json.loads: four processes append to one file, and a line torn by that
            # must still count.
            match = re.search(r'"kii_user_id": "([^"]+)"', line)
            migrated_lines[match.group(1) if match else "?"] += 1
        if "Booting worker" in line:
            workers.add(line)
    assert len(workers) == 4
    for user in users:
        assert migrated_lines[user["kii_user_id"]] == 1, migrated_lines  # exactly once
        row = store_row(app, user["kii_user_id"])
        assert row.state == MigrationState.migrated and row.password_hash is None
        assert [c["type"] for c in master_admin.get_credentials(user["id"])] == ["password"]
