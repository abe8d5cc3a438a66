"""The bulk endpoint's lookups on Keycloak's production database: each of a batch's three lookups (who
exists, who holds its usernames, its emails) is served by a unique key, whatever the realm holds
(MariaDB's EXPLAIN of the very statements the provider runs). The email lookup once went through the
plain EMAIL index, which MariaDB gave up for a scan of the realm's users as the realm grew."""

from __future__ import annotations

import dataclasses
import json
import secrets
import uuid

import pytest

from identity.keycloak.admin import AdminSession
from identity.keycloak.bootstrap import bootstrap, connect
from identity.keycloak.writer import KeycloakWriter
from tests.keycloak_mariadb import tables
from tests.used_secrets import remember

REALM = "china-bulk-plans"
USERS = 20000   # a batch is small beside the realm, as in production (500 beside 2 million)

KEYS = {"ids": "PRIMARY", "usernames": "UK_RU8TT6T700S9V50BU18WS5HA6", "emails": "UK_DYKN684SL8UP1CRFEI6ECKHD7"}


def rep(n: int, run: str) -> dict:
    return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run}-{n}")), "username": f"plan-{run}-{n:05d}",
            # A third without an email, as in Kii's export: the plain EMAIL index then holds many NULLs.
            "email": f"plan-{run}-{n:05d}@example.com" if n % 3 else None, "emailVerified": True, "enabled": True,
            "attributes": {"kii_user_id": [f"kii-{run}-{n}"], "migration_state": ["pending"],
                           "phone_number": [f"+86137{n:08d}"]}}   # not the listing test's numbers


@pytest.fixture(scope="module")
def writer(keycloak_mariadb, bootstrap_settings):
    url, username, password = keycloak_mariadb
    settings = dataclasses.replace(bootstrap_settings, server_url=url, realm=REALM,
                                   admin_client_secret=secrets.token_urlsafe(24))
    remember(settings.admin_client_secret)
    bootstrap(connect(settings, username, password), settings)
    writer = KeycloakWriter(AdminSession(url, REALM, settings.admin_client_id, settings.admin_client_secret, 30)(),
                            REALM)
    run = secrets.token_hex(3)
    for start in range(0, USERS, 1000):
        answers = writer.write([rep(n, run) for n in range(start, start + 1000)])
        assert {outcome for outcome, _ in answers.values()} == {"created"}
    return writer, run


def test_each_lookup_of_a_batch_is_served_by_a_unique_key(writer):
    writer, run = writer
    # Half the batch exists, half is new: both kinds of lookup.
    batch = [rep(n, run) for n in range(USERS - 250, USERS + 250)]
    assert len([r for r in batch if r["email"]]) > 200   # past MariaDB's index dives: statistics decide
    plans = writer.plans(batch)
    assert set(plans) == set(KEYS)
    for name, plan in plans.items():
        accesses = tables(plan)
        assert accesses and all(a.get("access_type") != "ALL" for a in accesses), (name, json.dumps(plan)[:2000])
        assert {a.get("key") for a in accesses} == {KEYS[name]}, (name, json.dumps(plan)[:2000])
        # A row or so per value of the batch, not the realm's users.
        assert all(int(a.get("rows", 0)) <= 2 * len(batch) for a in accesses), (name, json.dumps(plan)[:2000])
