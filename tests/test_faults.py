"""Faults under load: a gunicorn worker killed, MariaDB restarted, Keycloak restarted, while mixed
traffic (first-login migrations, native sign-ins, refreshes, GetUser) runs through gunicorn.

During the faults an answer may be an error (InternalErrorException, TooManyRequestsException, a
connection cut by the killed worker), never a wrong one: a right password is never "Incorrect
username or password", a wrong one never signs in. Afterwards: every user seen migrated is still
migrated, no legacy hash survives for a migrated user, no pending user lost theirs, and every user
signs in with the right password.

Runs after tests/cognito (by name) and before the session's secrets scan; the Keycloak it restarts
is the suite's own (scripts/keycloak.sh), the MariaDB the machine's (scripts/mariadb.sh).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter

import boto3
import pytest
import sqlalchemy as sa
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from identity.legacy.models import MigrationState
from tests.cognito.fixtures import store_row
from tests.conftest import ROOT

TOLERATED = {"InternalErrorException", "TooManyRequestsException", "connection"}


def script(*argv, timeout=600):
    subprocess.run([str(ROOT / "scripts" / argv[0]), *argv[1:]], check=True, timeout=timeout)


def workers_of(master_pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found]


class Traffic:
    """Mixed traffic from a few threads, each answer checked against what the user's password says."""

    def __init__(self, url: str, users: list[dict]):
        self.client = boto3.client("cognito-idp", region_name="cn-north-1", endpoint_url=url,
                                   config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1},
                                                 connect_timeout=5, read_timeout=30, max_pool_connections=20))
        self.users = users
        self.stop = threading.Event()
        self.outcomes: Counter = Counter()
        self.wrong_answers: list[str] = []
        self.signed_in: set[str] = set()
        self.wrong_budget: Counter = Counter()
        self.lock = threading.Lock()

    def _code(self, call) -> tuple[str, dict | None]:
        try:
            return "ok", call()
        except ClientError as exc:
            return exc.response["Error"]["Code"] + ":" + exc.response["Error"]["Message"], None
        except Exception:  # noqa: BLE001 - a connection cut by a killed worker or a restart
            return "connection", None

    def _record(self, kind: str, outcome: str, wrong: bool, user: dict) -> None:
        name = outcome.split(":")[0]
        with self.lock:
            self.outcomes[(kind, name)] += 1
            if wrong:
                self.wrong_answers.append(f"{kind} for {user['kii_user_id']}: {outcome}")

    def run(self) -> None:
        rng = random.Random()
        while not self.stop.is_set():
            user = rng.choice(self.users)
            with self.lock:
                # At most 3 wrong passwords per user: below both lockout thresholds (5), so every
                # refusal of a right password is a fault's doing, never a lockout's.
                right = rng.random() < 0.85 or self.wrong_budget[user["kii_user_id"]] >= 3
                if not right:
                    self.wrong_budget[user["kii_user_id"]] += 1
            password = user["password"] if right else "Not-The-Password-1"
            outcome, result = self._code(lambda: self.client.initiate_auth(
                AuthFlow="USER_PASSWORD_AUTH", ClientId="mobile",
                AuthParameters={"USERNAME": user["username"], "PASSWORD": password}))
            name = outcome.split(":")[0]
            if right:
                wrong = name not in TOLERATED | {"ok"}
            else:
                wrong = name == "ok"
            self._record("sign-in" if right else "wrong password", outcome, wrong, user)
            if name in TOLERATED:
                time.sleep(0.1)  # as an app backs off; a tight loop would slow the restarts down
            if name == "ok" and right:
                with self.lock:
                    self.signed_in.add(user["kii_user_id"])
                tokens = result["AuthenticationResult"]
                outcome, _ = self._code(lambda: self.client.initiate_auth(
                    AuthFlow="REFRESH_TOKEN_AUTH", ClientId="mobile",
                    AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]}))
                self._record("refresh", outcome, outcome.split(":")[0] not in TOLERATED | {"ok"}, user)
                outcome, _ = self._code(lambda: self.client.get_user(AccessToken=tokens["AccessToken"]))
                self._record("GetUser", outcome, outcome.split(":")[0] not in TOLERATED | {"ok"}, user)


@pytest.fixture
def many_legacy_users(legacy_user):
    return [legacy_user(password=f"Kii-Fault-Pass-{i}") for i in range(24)]


def test_faults_under_load_lose_nothing(start_gunicorn, many_legacy_users, app, database_url, master_admin):
    service = start_gunicorn(workers=3)
    traffic = Traffic(service["url"], many_legacy_users)
    threads = [threading.Thread(target=traffic.run) for _ in range(6)]
    for thread in threads:
        thread.start()
    faults = []
    try:
        time.sleep(3)
        victim = workers_of(service["process"].pid)[0]
        os.kill(victim, signal.SIGKILL)  # gunicorn's master starts a new worker
        faults.append("worker killed")
        time.sleep(3)
        if database_url.startswith("mysql"):  # SQLite has no server to restart; MariaDB's must restart
            script("mariadb.sh", "restart")
            faults.append("MariaDB restarted")
            time.sleep(3)
        script("keycloak.sh", "stop")
        time.sleep(2)
        script("keycloak.sh", "start")
        script("keycloak.sh", "wait")
        faults.append("Keycloak restarted")
        time.sleep(4)  # traffic once everything is back
    finally:
        traffic.stop.set()
        for thread in threads:
            thread.join(timeout=120)

    assert len(workers_of(service["process"].pid)) == 3, "gunicorn replaced the killed worker"
    assert not traffic.wrong_answers, traffic.wrong_answers[:20]
    assert traffic.outcomes[("sign-in", "ok")] > 20, traffic.outcomes  # the load did run
    assert traffic.outcomes[("refresh", "ok")] and traffic.outcomes[("GetUser", "ok")], traffic.outcomes
    print("faults:", faults, "outcomes:", dict(traffic.outcomes))

    # Every user seen signed in is migrated, with no legacy hash; no pending user lost theirs.
    for user in many_legacy_users:
        row = store_row(app, user["kii_user_id"])
        if user["kii_user_id"] in traffic.signed_in:
            assert row.state == MigrationState.migrated, user["kii_user_id"]
        if row.state == MigrationState.migrated:
            assert row.password_hash is None and row.salt is None
            assert [c["type"] for c in master_admin.get_credentials(user["id"])] == ["password"]
        else:
            assert row.state == MigrationState.pending and row.password_hash, user["kii_user_id"]

    # And everyone signs in with the right password now (the rest migrate here).
    client = traffic.client
    for user in many_legacy_users:
        assert client.initiate_auth(AuthFlow="USER_PASSWORD_AUTH", ClientId="mobile", AuthParameters={
            "USERNAME": user["username"], "PASSWORD": user["password"]})["AuthenticationResult"]["AccessToken"]
        row = store_row(app, user["kii_user_id"])
        assert row.state == MigrationState.migrated and row.password_hash is None
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        orphans = conn.execute(sa.text("SELECT COUNT(*) FROM legacy_users WHERE state = 'migrated' "
                                       "AND password_hash IS NOT NULL")).scalar()
    engine.dispose()
    assert orphans == 0
