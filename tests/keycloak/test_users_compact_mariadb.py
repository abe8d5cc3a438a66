"""The compact read on Keycloak's production database: a realm of thousands of users walked once in id
order with MariaDB's own types (its booleans, a long value in LONG_VALUE's text column), and the page's
statements served by indexes: the page a range of the primary key read in its order, at any depth, its
users' attributes and passwords the same range joined through indexes by user, the attributes read from
the provider's index alone (MariaDB's EXPLAIN of the very statements the provider runs)."""

from __future__ import annotations

import dataclasses
import json
import secrets
import uuid

import pytest

from identity.keycloak.admin import AdminSession
from identity.keycloak.bootstrap import bootstrap, connect
from identity.keycloak.passwords import migrate_password
from identity.keycloak.writer import KeycloakWriter
from tests.keycloak_mariadb import tables
from tests.used_secrets import remember

REALM = "china-compact"
USERS = 3000
PASSWORD = "Compact-Maria-Pass-1"
LONG = "v" * 600
# The index each statement reads its tables by: the page's range of the primary key, and its users' rows
# through an index by user (in whichever order the optimiser joins them, the range bounds the first: the
# page's range carries over to the user id of the joined table). The attributes through the provider's own
# index (identity-changelog.xml), which holds every column read: no row is looked up by its random key.
KEYS = {"page": ["PRIMARY"], "attributes": ["PRIMARY", "IDX_USER_ATTRIBUTE_BY_USER"],
        "long_values": ["PRIMARY", "IDX_USER_ATTRIBUTE_BY_USER"],
        "passwords": ["PRIMARY", "IDX_USER_CREDENTIAL"]}
# Read from the index alone (EXPLAIN's using_index), by table, for these statements.
INDEX_ONLY = {"attributes": "a"}


def rep(n: int, run: str) -> dict:
    attributes = {"kii_user_id": [f"kii-{run}-{n}"], "migration_state": ["pending"], "phone_number": [f"+86136{n:08d}"]}
    if n == 7:
        attributes["custom.note"] = [LONG]
    return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"compact-{run}-{n}")), "username": f"compact-{run}-{n:05d}",
            "email": f"compact-{run}-{n:05d}@example.com" if n % 3 else None, "emailVerified": n % 2 == 0,
            "enabled": n % 10 != 0, "attributes": attributes}


@pytest.fixture(scope="module")
def written(keycloak_mariadb, bootstrap_settings):
    url, username, password = keycloak_mariadb
    settings = dataclasses.replace(bootstrap_settings, server_url=url, realm=REALM,
                                   admin_client_secret=secrets.token_urlsafe(24))
    remember(settings.admin_client_secret, PASSWORD)
    bootstrap(connect(settings, username, password), settings)
    writer = KeycloakWriter(AdminSession(url, REALM, settings.admin_client_id, settings.admin_client_secret, 60)(),
                            REALM)
    run = secrets.token_hex(3)
    users = [rep(n, run) for n in range(USERS)]
    for start in range(0, USERS, 1000):
        assert {outcome for outcome, _ in writer.write(users[start:start + 1000]).values()} == {"created"}
    for user in users[:3]:
        assert migrate_password(writer.admin, REALM, user["id"], PASSWORD) == (True, None)
    return writer, users


def test_a_walk_sees_every_user_once_with_what_was_written(written):
    writer, users = written
    seen, after = [], None
    while True:
        page, after = writer.compact_page(after, 700)
        seen += page
        if after is None:
            break
    assert [u["id"] for u in seen] == sorted(u["id"] for u in users)
    found = {u["id"]: u for u in seen}
    for n, wanted in enumerate(users):
        user = found[wanted["id"]]
        assert (user["username"], user["email"], user["enabled"], user["emailVerified"], user["password"]) == \
            (wanted["username"], wanted["email"], wanted["enabled"], wanted["emailVerified"], n < 3), n
        assert user["attributes"]["phone_number"] == wanted["attributes"]["phone_number"]
    assert found[users[7]["id"]]["attributes"]["custom.note"] == [LONG]


def test_each_statement_of_a_page_is_served_by_an_index(written):
    """The page: a range of the primary key from `after`, read in its order (no sort), at any depth; the
    page's attributes, long values and passwords: the same range, joined through indexes by user, the
    attributes from the index alone. A page small beside the realm, as in production."""
    writer, users = written
    ids = sorted(u["id"] for u in users)
    for after in (None, ids[USERS // 2], ids[-200]):
        response = writer.admin.connection.raw_get(f"realms/{REALM}/legacy-migration/users/compact/plan",
                                                   max=100, **({"after": after} if after else {}))
        assert response.status_code == 200, response.text[:300]
        plans = {name: json.loads(plan) for name, plan in response.json().items()}
        assert set(plans) == set(KEYS)
        for name, plan in plans.items():
            accesses = tables(plan)
            assert sorted((a.get("key"), a.get("access_type") != "ALL") for a in accesses) == \
                sorted((key, True) for key in KEYS[name]), (name, json.dumps(plan)[:2000])
            assert accesses[0]["access_type"] == "range", (name, json.dumps(plan)[:2000])
            assert "filesort" not in json.dumps(plan), (name, json.dumps(plan)[:2000])
            if name in INDEX_ONLY:
                joined = next(a for a in accesses if a["table_name"] == INDEX_ONLY[name])
                assert joined.get("using_index") is True, (name, json.dumps(plan)[:2000])
