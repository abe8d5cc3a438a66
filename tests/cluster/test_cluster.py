"""Two Keycloak nodes, two services, nginx (scripts/cluster.py): what one node did, the other sees.
Each rule here matters only with more than one node: tokens and sessions, the per-user sign-in lock,
the migration ticket in Keycloak's single-use store, lockout counters, Keycloak's user cache after
an import through the provider."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from botocore.exceptions import ClientError

from tests.cluster.conftest import cognito_client
from tests.conftest import ROOT
from tests.used_secrets import remember

MOBILE = "mobile"
REDIRECT = "com.example.app://callback"


def sign_in(cognito, username: str, password: str) -> dict:
    return cognito.initiate_auth(ClientId=MOBILE, AuthFlow="USER_PASSWORD_AUTH",
                                 AuthParameters={"USERNAME": username, "PASSWORD": password})["AuthenticationResult"]


def error_of(call) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"]


def test_both_nodes_are_one_cluster(cluster):
    for node in cluster.ports.nodes:
        assert cluster.members(node) == 2, f"{node.name} does not see both nodes"


def test_signed_in_on_one_node_refreshed_read_and_signed_out_on_the_other(service_on, node_admin):
    username, password = f"c-{secrets.token_hex(5)}", "Cluster-Pass-1"
    remember(password)
    node_admin(0).create_user({"username": username, "enabled": True, "credentials": [
        {"type": "password", "value": password, "temporary": False}]})
    first, second = service_on(0)["cognito"], service_on(1)["cognito"]

    tokens = sign_in(first, username, password)
    refreshed = second.initiate_auth(ClientId=MOBILE, AuthFlow="REFRESH_TOKEN_AUTH",
                                     AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]})["AuthenticationResult"]
    for cognito in (first, second):
        for access in (tokens["AccessToken"], refreshed["AccessToken"]):
            assert cognito.get_user(AccessToken=access)["Username"] == username

    second.global_sign_out(AccessToken=refreshed["AccessToken"])
    for cognito in (first, second):
        assert error_of(lambda: cognito.get_user(AccessToken=tokens["AccessToken"])) == "NotAuthorizedException"
        assert error_of(lambda: cognito.initiate_auth(
            ClientId=MOBILE, AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]})) == "NotAuthorizedException"


def test_parallel_first_logins_over_both_nodes_migrate_each_user_exactly_once(service_on, node_admin, kii_user):
    """20 first logins of 5 Kii users at once, spread over the two nodes: every right password signs in,
    every wrong one is refused, and each user ends with one password in Keycloak, migrated once."""
    users = [kii_user() for _ in range(5)]
    attempts = [(user, user["password"] if i % 2 == 0 else "Wrong-Pass-9", i % 2 == 0, service_on(i // 2 % 2)["url"])
                for user in users for i in range(4)]

    def attempt(args):
        user, password, right, url = args
        cognito = cognito_client(url)
        try:
            sign_in(cognito, user["username"], password)
            return right, "signed in"
        except ClientError as exc:
            return right, exc.response["Error"]["Code"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(attempt, attempts))
    assert [o for right, o in outcomes if right] == ["signed in"] * 10, outcomes
    assert {o for right, o in outcomes if not right} == {"NotAuthorizedException"}, outcomes

    from identity.db import db
    from identity.legacy.models import LegacyUser, MigrationState

    with service_on(1)["app"].app_context():
        for user in users:
            row = db.session.get(LegacyUser, user["kii_user_id"])
            assert row.state == MigrationState.migrated and row.password_hash is None
            credentials = [c for c in node_admin(1).get_credentials(user["id"]) if c["type"] == "password"]
            assert len(credentials) == 1
            assert sign_in(service_on(1)["cognito"], user["username"], user["password"])["AccessToken"]


def node_keycloak(cluster, index: int):
    """The service's own Keycloak objects (gateway, OIDC client) configured with node `index`."""
    from identity.keycloak.admin import AdminSession
    from identity.keycloak.gateway import KeycloakGateway
    from identity.keycloak.oidc import OIDC

    secret = cluster.secrets()
    url = cluster.ports.nodes[index].url
    gateway = KeycloakGateway(AdminSession(url, "china", "identity-service",
                                           secret["IDENTITY_KEYCLOAK_ADMIN_CLIENT_SECRET"], 10), "china")
    return gateway, OIDC(url, "china", cluster.public_url, 10, user_pool_id="cn-north-1_china")


def test_a_ticket_minted_on_one_node_is_redeemed_on_the_other_once(cluster, kii_user):
    """The first-login ticket lives in Keycloak's single-use store: minted through node 1 it stands in
    for the password at node 2 (the grant below sends a wrong one), and only once, on either node."""
    from identity.keycloak.errors import OAuthError

    user = kii_user()
    (gateway, first), (_, second) = node_keycloak(cluster, 0), node_keycloak(cluster, 1)
    done, ticket = gateway.migrate_password(user["id"], user["password"], MOBILE)
    assert done and ticket
    remember(ticket)
    tokens = second.password_grant(MOBILE, None, user["username"], "Not-The-Password-1", migration_ticket=ticket)
    assert tokens["access_token"]
    for oidc in (first, second):
        with pytest.raises(OAuthError):
            oidc.password_grant(MOBILE, None, user["username"], "Not-The-Password-1", migration_ticket=ticket)


def test_a_user_locked_out_through_one_service_is_locked_out_through_the_other(service_on, node_admin):
    username, password = f"c-{secrets.token_hex(5)}", "Cluster-Pass-2"
    remember(password)
    node_admin(1).create_user({"username": username, "enabled": True, "credentials": [
        {"type": "password", "value": password, "temporary": False}]})
    for _ in range(5):
        assert error_of(lambda: sign_in(service_on(0)["cognito"], username, "Wrong-Pass-8")) == \
            "NotAuthorizedException"
    with pytest.raises(ClientError) as raised:
        sign_in(service_on(1)["cognito"], username, password)
    assert raised.value.response["Error"]["Message"] == "Password attempts exceeded"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def test_the_login_page_of_node_1_posted_to_node_2_migrates_a_kii_user(cluster, kii_user, service_on):
    """No sticky sessions: the page comes from node 1, its form goes to node 2, which checks the
    legacy password through the services' bridge (the internal balancer) and signs the user in."""
    from identity.db import db
    from identity.legacy.models import LegacyUser, MigrationState

    user = kii_user()
    first, second = (node.url for node in cluster.ports.nodes)
    browser = requests.Session()
    _, challenge = pkce()
    page = browser.get(f"{first}/realms/china/protocol/openid-connect/auth", timeout=20, params={
        "client_id": MOBILE, "response_type": "code", "redirect_uri": REDIRECT, "scope": "openid",
        "state": "cluster", "code_challenge": challenge, "code_challenge_method": "S256"})
    assert page.status_code == 200, page.text[:300]
    action = html.unescape(re.search(r'<form[^>]+id="kc-form-login"[^>]+action="([^"]+)"', page.text).group(1))
    assert action.startswith(first)
    # Keycloak marks its cookies Secure: a browser on the public https origin sends them back, and here,
    # with the nodes reached over plain http, the test sends them itself.
    cookies = "; ".join(f"{cookie.name}={cookie.value}" for cookie in browser.cookies)
    done = requests.post(second + action[len(first):], timeout=20, allow_redirects=False, headers={"Cookie": cookies},
                         data={"username": user["username"], "password": user["password"], "credentialId": ""})
    assert done.status_code == 302, done.text[:500]
    assert done.headers["Location"].startswith(REDIRECT + "?"), done.headers["Location"]
    assert parse_qs(urlsplit(done.headers["Location"]).query).get("code")
    with service_on(0)["app"].app_context():
        assert db.session.get(LegacyUser, user["kii_user_id"]).state == MigrationState.migrated


def test_users_imported_through_one_node_are_found_and_sign_in_through_the_other(cluster, service_on, node_admin,
                                                                                tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    import csv

    from gen_kii_export import generate

    export = tmp_path / "export"
    # Names of their own: the cluster's realm keeps the users of earlier runs.
    generate(export, 40, seed=secrets.randbelow(10**9), failure_rate=0, sample_every=5, deleted=0,
             first=1_000_000 + secrets.randbelow(90_000) * 1000)
    env = cluster.identity_env(cluster.ports.nodes[0].url)
    env.pop("IDENTITY_LEGACY_HASH_KEY")
    env["IDENTITY_LEGACY_HASH_KEY_FILE"] = str(export / "hash-key")
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "identity"), "import-profiles",
                             "--profiles", str(export / "profiles.jsonl"), "--hashes", str(export / "hashes.csv"),
                             "--report", str(tmp_path / "report.json")], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]

    samples = [row for row in csv.DictReader((export / "passwords.csv").open())
               if row["disabled"] == "false" and row["loginName"]]
    assert samples
    other = node_admin(1)
    with_email = 0
    for sample in samples:
        remember(sample["password"])
        found = other.get_users({"username": sample["loginName"], "exact": True})
        assert [u["username"] for u in found] == [sample["loginName"].lower()]
        assert found[0]["attributes"]["kii_user_id"] == [sample["userID"]]
        if found[0].get("email"):   # the export's email, unless the import had a reason to leave it out
            assert [u["id"] for u in other.get_users({"email": found[0]["email"], "exact": True})] == \
                [found[0]["id"]]
            with_email += 1
    assert with_email
    import_key = (export / "hash-key").read_text().strip()
    remember(import_key)
    service = service_on(1, LEGACY_HASH_KEY=None, LEGACY_HASH_KEY_FILE=str(export / "hash-key"))
    for sample in samples[:3]:
        assert sign_in(service["cognito"], sample["loginName"], sample["password"])["AccessToken"]


def test_through_nginx_both_services_and_both_nodes_serve(cluster, node_admin):
    """The production template balances the public side over both services, and the internal balancer
    the services' calls over both nodes."""
    username, password = f"c-{secrets.token_hex(5)}", "Cluster-Pass-3"
    remember(password)
    node_admin(0).create_user({"username": username, "enabled": True, "credentials": [
        {"type": "password", "value": password, "temporary": False}]})
    seen_before = [service_log_lines(cluster, i) for i in range(2)]
    for _ in range(6):
        sign_in(cognito_https(cluster), username, password)
    for index in range(2):
        assert service_log_lines(cluster, index) > seen_before[index], f"service {index} got no request"
    # Each sign-in is several calls to Keycloak: the internal balancer spread them over both nodes.
    internal = (cluster.nginx_prefix / "internal.log").read_text()
    for node in cluster.ports.nodes:
        assert f"127.0.0.1:{node.http} 200" in internal, node


def cognito_https(cluster):
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    return boto3.client("cognito-idp", region_name="cn-north-1", endpoint_url=cluster.public_url,
                        verify=cluster.cafile, config=Config(signature_version=UNSIGNED, retries={"max_attempts": 0}))


def service_log_lines(cluster, index: int) -> int:
    return (cluster.var / f"service-{index}.log").read_text(errors="replace").count('"POST / HTTP')


COGNITO_ERROR = re.compile(r"^[A-Z][A-Za-z]+Exception$")


def test_a_node_killed_under_load_loses_only_its_requests_in_flight_and_rejoins(cluster, node_admin, kii_user):
    """Sign-ins and first logins through nginx, both services, both nodes; node 1 is killed (SIGKILL)
    midway. Sign-ins go on through node 2; what fails fails with Cognito's error shape, around the
    kill only; every first login the service confirmed is migrated with one password, and the
    others still sign in. Node 1 then restarts and joins the cluster again."""
    import os
    import signal
    import threading
    import time

    password = "Cluster-Load-1"
    remember(password)
    users = [f"load-{secrets.token_hex(4)}" for _ in range(6)]
    for username in users:
        node_admin(1).create_user({"username": username, "enabled": True, "credentials": [
            {"type": "password", "value": password, "temporary": False}]})
    made = [kii_user() for _ in range(8)]
    kii = list(made)
    node = cluster.ports.nodes[0]
    pid = cluster.node_pid(node)
    assert pid, "node 1 is not running"

    records: list[tuple[float, str, str]] = []
    lock = threading.Lock()
    started = time.monotonic()
    stop_at = started + 16

    def worker(offset: int) -> None:
        cognito = cognito_https(cluster)
        turn = offset
        while time.monotonic() < stop_at:
            kind, who = ("kii", kii.pop()) if offset == 0 and kii_turn(turn) else ("user", None)
            username = who["username"] if who else users[turn % len(users)]
            secret = who["password"] if who else password
            try:
                sign_in(cognito, username, secret)
                outcome = "ok"
            except ClientError as exc:
                outcome = exc.response["Error"]["Code"]
            with lock:
                records.append((time.monotonic() - started, kind if not who else f"kii:{who['kii_user_id']}", outcome))
            turn += 1

    def kii_turn(turn: int) -> bool:
        return bool(kii) and turn % 3 == 0

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(5)
    killed_at = time.monotonic() - started
    os.kill(pid, signal.SIGKILL)
    for thread in threads:
        thread.join(timeout=120)

    failures = [r for r in records if r[2] != "ok"]
    assert all(COGNITO_ERROR.match(outcome) for _, _, outcome in failures), failures
    assert all(killed_at - 1 <= t <= killed_at + 6 for t, _, _ in failures), (killed_at, failures)
    after = [r for r in records if r[0] > killed_at + 6]
    assert after and all(outcome == "ok" for _, _, outcome in after), after
    assert len([r for r in records if r[0] < killed_at]) > 0

    confirmed = {kind[4:] for _, kind, outcome in records if kind.startswith("kii:") and outcome == "ok"}
    assert confirmed, records
    check_migrations(cluster, node_admin, [u for u in made if any(r[1] == f"kii:{u['kii_user_id']}" for r in records)],
                     confirmed)

    cluster.keycloak("ensure", node)
    deadline = time.monotonic() + 60
    while cluster.members(node) != 2 and time.monotonic() < deadline:
        time.sleep(1)
    assert cluster.members(node) == 2


def check_migrations(cluster, node_admin, kii, confirmed: set[str]) -> None:
    """Every Kii user the service confirmed is migrated with one password; one whose first login
    failed around the kill signs in now, and is then migrated the same way."""
    import pymysql

    connection = pymysql.connect(host="127.0.0.1", user="cluster", password=cluster.secrets()["CLUSTER_DB_PASSWORD"],
                                 database="identity_cluster", autocommit=True)
    try:
        for user in kii:
            if user["kii_user_id"] not in confirmed:
                sign_in(cognito_https(cluster), user["username"], user["password"])
            with connection.cursor() as cursor:
                cursor.execute("SELECT state, password_hash IS NULL FROM legacy_users WHERE kii_user_id = %s",
                               (user["kii_user_id"],))
                assert cursor.fetchone() == ("migrated", 1), user["kii_user_id"]
            passwords = [c for c in node_admin(1).get_credentials(user["id"]) if c["type"] == "password"]
            assert len(passwords) == 1, user["kii_user_id"]
    finally:
        connection.close()
