"""The provider's batch disable (`POST .../legacy-migration/users/disable`, the importer's deletions): each
user of the batch disabled in one call and answered disabled, unchanged or missing, in the order given;
only the service's own account may call it; a batch past 1000 ids is refused. The import end to end:
tests/importer/test_deletions.py, tests/importer/test_import.py."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from identity.keycloak.admin import AdminSession
from identity.keycloak.errors import KeycloakRefused
from identity.keycloak.writer import KeycloakWriter
from tests.used_secrets import remember


@pytest.fixture(scope="module")
def writer(realm):
    admin = AdminSession(realm.server_url, realm.realm, realm.admin_client_id, realm.admin_client_secret, 30)()
    return KeycloakWriter(admin, realm.realm)


def rep(n: int, **fields) -> dict:
    tag = uuid.uuid4().hex[:8]
    return {"id": str(uuid.uuid4()), "username": f"disable-{n}-{tag}", "email": f"disable-{n}-{tag}@example.com",
            "emailVerified": True, "enabled": True,
            "attributes": {"kii_user_id": [f"kii-disable-{n}-{tag}"], "migration_state": ["pending"]}, **fields}


@pytest.fixture
def written(writer):
    """Three users, the second disabled already; deleted afterwards."""
    users = [rep(0), rep(1, enabled=False), rep(2)]
    assert {outcome for outcome, _ in writer.write(users).values()} == {"created"}
    yield users
    for user in users:
        writer.delete_user(user["id"])


def disable_status(realm, bearer: str | None, ids: list[str]) -> int:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return requests.post(f"{realm.server_url}/realms/{realm.realm}/legacy-migration/users/disable",
                         json={"ids": ids}, headers=headers, timeout=30).status_code


def test_a_batch_is_disabled_in_one_call(writer, written, master_admin, realm):
    unknown = str(uuid.uuid4())
    ids = [u["id"] for u in written] + [unknown]
    assert writer.disable_many(ids) == {written[0]["id"]: "disabled", written[1]["id"]: "unchanged",
                                        written[2]["id"]: "disabled", unknown: "missing"}
    master_admin.change_current_realm(realm.realm)
    assert [master_admin.get_user(u["id"])["enabled"] for u in written] == [False, False, False]
    # Nothing else of theirs changed.
    assert [master_admin.get_user(u["id"])["username"] for u in written] == [u["username"] for u in written]
    # The answers come in the order given; the same batch again disables nothing.
    response = writer.admin.connection.raw_post(f"realms/{realm.realm}/legacy-migration/users/disable",
                                                data='{"ids": ["%s", "%s"]}' % (unknown, written[2]["id"]))
    assert response.json() == {"results": [{"id": unknown, "outcome": "missing"},
                                           {"id": written[2]["id"], "outcome": "unchanged"}]}
    assert writer.disable_many([]) == {}


def test_only_the_services_own_account_may_disable(written, master_admin, realm):
    """Another client's service account holding manage-users, as the service's does: refused, and nothing
    changes."""
    master_admin.change_current_realm(realm.realm)
    management = master_admin.get_client_id("realm-management")
    client_id, secret = f"other-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    remember(secret)
    client = master_admin.create_client({"clientId": client_id, "enabled": True, "publicClient": False,
                                         "secret": secret, "serviceAccountsEnabled": True,
                                         "standardFlowEnabled": False, "directAccessGrantsEnabled": False})
    try:
        account = master_admin.get_client_service_account_user(client)
        master_admin.assign_client_role(account["id"], management,
                                        [master_admin.get_client_role(management, "manage-users")])
        response = requests.post(f"{realm.server_url}/realms/{realm.realm}/protocol/openid-connect/token",
                                 data={"grant_type": "client_credentials", "client_id": client_id,
                                       "client_secret": secret}, timeout=30)
        assert response.status_code == 200, response.text
        other = response.json()["access_token"]
        remember(other)
        assert [disable_status(realm, bearer, [written[0]["id"]]) for bearer in (other, None)] == [403, 401]
        assert master_admin.get_user(written[0]["id"])["enabled"] is True
    finally:
        master_admin.delete_client(client)


@pytest.mark.parametrize("ids", [[str(uuid.uuid4()) for _ in range(1001)], [], ["x" * 37], [""], [7]])
def test_a_malformed_batch_is_refused(writer, realm, ids):
    response = writer.admin.connection.raw_post(f"realms/{realm.realm}/legacy-migration/users/disable",
                                                data=json.dumps({"ids": ids}))
    assert (response.status_code, response.json()) == (400, {"error": "invalid_request"})


def test_the_writer_names_a_refusal(writer):
    with pytest.raises(KeycloakRefused) as refused:
        writer.disable_many([str(uuid.uuid4()) for _ in range(1001)])
    assert refused.value.status == 400
