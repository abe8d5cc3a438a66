"""The provider's compact read of a realm's users (`GET .../legacy-migration/users/compact`, verify's bulk
read): pages in id order walk every user once, with the fields and attributes the bulk write stored (a
value too long for Keycloak's VALUE column included) and whether each has a password; service accounts
are left out; only the service's own account may call it."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
import requests

from identity.keycloak.admin import AdminSession
from identity.keycloak.bootstrap import bootstrap
from identity.keycloak.errors import KeycloakRefused
from identity.keycloak.passwords import migrate_password
from identity.keycloak.writer import KeycloakWriter
from tests.conftest import TEST_REALM
from tests.keycloak import test_migration_caller as caller
from tests.used_secrets import remember

PASSWORD = "Compact-Read-Pass-1"
support_staff = caller.support_staff   # that module's fixture, used here too
LONG = "长" * 10 + "x" * 290   # past VALUE's 255 characters: Keycloak keeps it in LONG_VALUE


@pytest.fixture(scope="module")
def compact_realm(master_admin, realm):
    """A realm of its own, so that the walk knows every user it holds."""
    settings = replace(realm, realm=f"compact-{uuid.uuid4().hex[:8]}")
    bootstrap(master_admin, settings)
    yield settings
    master_admin.change_current_realm(TEST_REALM)
    master_admin.delete_realm(settings.realm)


@pytest.fixture(scope="module")
def writer(compact_realm):
    admin = AdminSession(compact_realm.server_url, compact_realm.realm, compact_realm.admin_client_id,
                         compact_realm.admin_client_secret, 30)()
    return KeycloakWriter(admin, compact_realm.realm)


def rep(n: int, **fields) -> dict:
    return {"id": str(uuid.uuid4()), "username": f"compact-{n}-{uuid.uuid4().hex[:6]}",
            "email": f"compact-{n}-{uuid.uuid4().hex[:6]}@example.com", "emailVerified": n % 2 == 0,
            "enabled": True,
            "attributes": {"kii_user_id": [f"kii-compact-{n}"], "migration_state": ["pending"],
                           "phone_number": [f"+8613900{n:06d}"], "name": ["王小明"], "custom.deviceModel": ["BP-7"]},
            **fields}


@pytest.fixture(scope="module")
def written(writer, compact_realm):
    """Five users: one without an email, one disabled, one with a long custom value, one with a password."""
    users = [rep(0), rep(1, email=None), rep(2, enabled=False), rep(3), rep(4)]
    users[3]["attributes"]["custom.note"] = [LONG]
    assert {outcome for outcome, _ in writer.write(users).values()} == {"created"}
    remember(PASSWORD)
    assert migrate_password(writer.admin, compact_realm.realm, users[4]["id"], PASSWORD) == (True, None)
    return users


def walk(writer, size: int, after: str | None = None, to: str | None = None) -> list[list[dict]]:
    pages = []
    while True:
        users, after = writer.compact_page(after, size, to)
        pages.append(users)
        if after is None:
            return pages
        assert after == users[-1]["id"] and len(users) == size


def test_pages_walk_every_user_once_in_id_order(writer, written):
    pages = walk(writer, 2)
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [u["id"] for page in pages for u in page] == sorted(u["id"] for u in written)
    # A full last page: the next one is empty, and says so.
    users, after = writer.compact_page(None, len(written))
    assert len(users) == len(written) and after == users[-1]["id"]
    assert writer.compact_page(after, len(written)) == ([], None)
    assert writer.compact_page(None, 10000) == (users, None)


def test_walks_split_at_an_id_read_every_user_once_between_them(writer, written):
    ids = sorted(u["id"] for u in written)
    # Split at an existing id (the walk up to it includes it) and between ids: nothing lost, nothing twice.
    for bound in (ids[2], ids[2] + "0"):
        below = [u["id"] for page in walk(writer, 2, to=bound) for u in page]
        above = [u["id"] for page in walk(writer, 2, after=bound) for u in page]
        assert below == ids[:3] and above == ids[3:]
    assert [u["id"] for page in walk(writer, 1, after=ids[0], to=ids[3]) for u in page] == ids[1:4]


def test_each_user_is_what_was_written(writer, written, master_admin, compact_realm):
    found = {u["id"]: u for u in writer.compact_page(None, 100)[0]}
    master_admin.change_current_realm(compact_realm.realm)
    for n, wanted in enumerate(written):
        user = found[wanted["id"]]
        assert set(user) == {"id", "username", "email", "enabled", "emailVerified", "password", "attributes"}
        assert (user["username"], user["email"], user["enabled"], user["emailVerified"]) == \
            (wanted["username"], wanted["email"], wanted["enabled"], wanted["emailVerified"])
        assert user["password"] is (n == 4)
        for name, values in wanted["attributes"].items():
            if name != "migration_state":
                assert user["attributes"][name] == values, name
        # Everything Keycloak's own read shows, the provider's own migration attributes included.
        assert user["attributes"] == master_admin.get_user(wanted["id"])["attributes"]
    assert found[written[1]["id"]]["email"] is None
    assert found[written[3]["id"]]["attributes"]["custom.note"] == [LONG]
    assert found[written[4]["id"]]["attributes"]["migration_state"] == ["migrated"]
    assert {found[u["id"]]["attributes"]["migration_state"][0] for u in written[:4]} == {"pending"}


def test_service_accounts_are_not_listed(writer, written, master_admin, compact_realm):
    master_admin.change_current_realm(compact_realm.realm)
    service = master_admin.get_client_service_account_user(master_admin.get_client_id(compact_realm.admin_client_id))
    listed = {u["id"] for u in writer.compact_page(None, 100)[0]}
    assert service["id"] not in listed and listed == {u["id"] for u in written}


@pytest.mark.parametrize("query", [{"max": 0}, {"max": 10001}, {}, {"max": 5, "after": "x" * 256},
                                   {"max": 5, "to": "x" * 256}])
def test_a_malformed_page_is_refused(writer, query):
    response = writer.admin.connection.raw_get(f"realms/{writer.realm}/legacy-migration/users/compact", **query)
    assert (response.status_code, response.json()) == (400, {"error": "invalid_request"})


def test_the_writer_names_a_refusal(writer):
    with pytest.raises(KeycloakRefused) as refused:
        writer.compact_page(None, 10001)
    assert refused.value.status == 400


def token(compact_realm, data: dict) -> str:
    response = requests.post(f"{compact_realm.server_url}/realms/{compact_realm.realm}/protocol/openid-connect/token",
                             data=data, timeout=30)
    assert response.status_code == 200, response.text
    remember(response.json()["access_token"])
    return response.json()["access_token"]


def compact_status(compact_realm, bearer: str | None) -> int:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return requests.get(f"{compact_realm.server_url}/realms/{compact_realm.realm}/legacy-migration/users/compact",
                        params={"max": 5}, headers=headers, timeout=30).status_code


def test_only_the_services_own_account_may_read(written, master_admin, compact_realm, kc_user):
    master_admin.change_current_realm(compact_realm.realm)
    management = master_admin.get_client_id("realm-management")
    # Another client's service account holding manage-users, as the service's does.
    client_id, secret = f"other-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    remember(secret)
    client = master_admin.create_client({"clientId": client_id, "enabled": True, "publicClient": False,
                                         "secret": secret, "serviceAccountsEnabled": True,
                                         "standardFlowEnabled": False, "directAccessGrantsEnabled": False})
    account = master_admin.get_client_service_account_user(client)
    master_admin.assign_client_role(account["id"], management, [master_admin.get_client_role(management,
                                                                                             "manage-users")])
    other = token(compact_realm, {"grant_type": "client_credentials", "client_id": client_id,
                                  "client_secret": secret})
    # One of the realm's users, signed in: an app's token names Cognito's issuer, which Keycloak takes from
    # no bearer (401); one of Keycloak's own issuer (admin-cli) is known, and refused (403).
    remember(PASSWORD)
    user = master_admin.create_user({"username": f"plain-{uuid.uuid4().hex[:8]}", "enabled": True,
                                     "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}]})
    app, plain = (token(compact_realm, {"grant_type": "password", "client_id": signed_in_at, "scope": "openid",
                                        "username": master_admin.get_user(user)["username"], "password": PASSWORD})
                  for signed_in_at in (compact_realm.app_client_id, "admin-cli"))
    # The server's administrator: a token of another realm.
    master_admin.get_realms()
    administrator = master_admin.connection.token["access_token"]
    remember(administrator)
    assert [compact_status(compact_realm, bearer) for bearer in (other, plain, app, administrator, None)] == \
        [403, 403, 401, 401, 401]


def test_support_staff_may_not_read(keycloak_url, support_staff, realm):
    """Support staff hold manage-users (they unlock and disable users), signed in as the console signs in."""
    staff = caller.console_token(keycloak_url, support_staff)
    assert compact_status(realm, staff) == 403
