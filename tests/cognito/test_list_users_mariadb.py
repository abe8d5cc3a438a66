"""ListUsers at scale on Keycloak's production database: 2,500 users paged through with boto3's own
paginator, each once and in order, and every filter's statement served by an index (MariaDB's EXPLAIN
of the very statement the provider runs)."""

from __future__ import annotations

import dataclasses
import json
import secrets
import threading

import boto3
import pytest
from botocore.config import Config
from werkzeug.serving import make_server

from identity.keycloak.bootstrap import bootstrap, connect
from tests.cognito.fixtures import free_port, live_app
from tests.keycloak_mariadb import tables
from tests.used_secrets import remember

USERS = 2500
POOL_ID = "cn-north-1_china"
REALM = "china-listing"

pytestmark = pytest.mark.usefixtures("app")   # the suite's database, migrated


def names() -> list[str]:
    return [f"scale-{n:05d}" for n in range(USERS)]


@pytest.fixture(scope="module")
def listing(keycloak_mariadb, bootstrap_settings, database_url):
    url, username, password = keycloak_mariadb
    settings = dataclasses.replace(bootstrap_settings, server_url=url, realm=REALM,
                                   admin_client_secret=secrets.token_urlsafe(24))
    remember(settings.admin_client_secret)
    admin = connect(settings, username, password)
    bootstrap(admin, settings)
    admin.change_current_realm(REALM)
    users = [{"username": name, "email": f"{name}@example.com", "emailVerified": True, "enabled": n % 10 != 0,
              "firstName": "Scale", "attributes": {"phone_number": [f"+86139{n:08d}"]}}
             for n, name in enumerate(names())]
    for start in range(0, USERS, 500):
        response = admin.connection.raw_post(f"admin/realms/{REALM}/partialImport", data=json.dumps(
            {"ifResourceExists": "FAIL", "users": users[start:start + 500]}))
        assert response.status_code == 200, response.text[:300]
    port = free_port()
    service = live_app(settings, database_url, port)
    server = make_server("127.0.0.1", port, service, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    result = service.test_cli_runner().invoke(args=["access-keys", "create", "--name", f"lister-{port}",
                                                    "--allow", "ListUsers"])
    key = json.loads(next(line for line in result.output.splitlines() if line.startswith("{")))
    remember(key["SecretAccessKey"])
    client = boto3.client("cognito-idp", endpoint_url=f"http://127.0.0.1:{port}", region_name="cn-north-1",
                          aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                          config=Config(retries={"max_attempts": 1}))
    yield {"client": client, "gateway": service.extensions["cognito"].service.keycloak}
    server.shutdown()


def test_pages_through_every_user_once_in_order(listing):
    seen = []
    for page in listing["client"].get_paginator("list_users").paginate(UserPoolId=POOL_ID,
                                                                        PaginationConfig={"PageSize": 60}):
        assert len(page["Users"]) <= 60
        seen += [user["Username"] for user in page["Users"]]
    assert seen == names()
    disabled = listing["client"].list_users(UserPoolId=POOL_ID, Filter='status = "Disabled"', Limit=60)
    assert [u["Username"] for u in disabled["Users"]] == names()[0:600:10]


SELECTIVE = [
    ("username", "eq", "scale-01234", "UK_RU8TT6T700S9V50BU18WS5HA6"),
    ("username", "prefix", "scale-012", "UK_RU8TT6T700S9V50BU18WS5HA6"),
    ("email", "eq", "scale-01234@example.com", "IDX_USER_EMAIL"),
    ("email", "prefix", "scale-0123", "IDX_USER_EMAIL"),
    ("phone_number", "eq", "+8613900001234", "IDX_USER_ATTRIBUTE_NAME"),
    ("phone_number", "prefix", "+86139000012", "IDX_USER_ATTRIBUTE_NAME"),
    ("sub", "eq", "scale-01234", "PRIMARY"),   # that user's id
]


@pytest.mark.parametrize("field,match,value,index", SELECTIVE, ids=[f"{f}-{m}" for f, m, _, _ in SELECTIVE])
def test_each_filter_uses_its_index(listing, field, match, value, index):
    if field == "sub":
        value = listing["gateway"].user_page("username", "eq", value, "", 1)[0][0][0]["id"]
    plan = listing["gateway"].user_page_plan(field, match, value, "", 60)
    accesses = tables(plan)
    assert accesses and all(a.get("access_type") != "ALL" for a in accesses), json.dumps(plan)[:2000]
    used = {a.get("key") for a in accesses}
    assert index in used, json.dumps(plan)[:2000]
    # The filter's own table is read through its index: a handful of rows, not the realm.
    assert min(int(a.get("rows", 0)) for a in accesses if a.get("key") == index) < 200, json.dumps(plan)[:2000]


def test_a_deep_page_and_an_unfiltered_page_walk_the_username_index(listing):
    for after in ("", "scale-02400"):
        for field, match, value in ((None, None, None), ("status", "eq", "Disabled"), ("given_name", "eq", "Scale")):
            accesses = tables(listing["gateway"].user_page_plan(field, match, value, after, 60))
            user_entity = [a for a in accesses if a["table_name"] == "u"]
            assert user_entity and user_entity[0]["key"] == "UK_RU8TT6T700S9V50BU18WS5HA6", accesses
            assert user_entity[0]["access_type"] in ("range", "ref"), accesses
