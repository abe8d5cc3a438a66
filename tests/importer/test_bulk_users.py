"""The provider's bulk write (`POST .../legacy-migration/users/bulk`, the importer's way into Keycloak)
makes users indistinguishable from users the Admin API makes: the same Kii user made both ways compares
equal field by field, shows in the console's searches, signs in and is edited in the console; the cache
sees a write at once; the same batch twice changes nothing; a refusal changes nothing."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from identity.importer.profile import parse_user, to_keycloak
from identity.keycloak.writer import KeycloakWriter, bulk_entry
from tests.used_secrets import remember

PASSWORD = "Bulk-Equal-Pass-1"


@pytest.fixture
def writer(import_app, import_realm):
    from identity.keycloak import keycloak

    with import_app.app_context():
        yield KeycloakWriter(keycloak.admin, import_realm.realm)


def kii_user(realm: str, tag: str, **extra) -> dict:
    record = {"userID": f"bulk-{tag}", "loginName": f"Bulk-{tag}", "emailAddress": f"bulk-{tag}@example.com",
              "emailAddressVerified": True, "phoneNumber": f"+86138{abs(hash(tag)) % 10**8:08d}",
              "displayName": "王小明", "country": "CN", "locale": "zh-CN", "deviceModel": "BP-7",
              "_hasPassword": True, "_created": 1700000000000, "_modified": 100, **extra}
    return to_keycloak(parse_user(record, realm), state="pending")


def through_admin_api(admin, representation: dict) -> str:
    """The same user as the Admin API makes it (POST /users; the read-only migration attributes through
    the provider, which is the only writer of those for any user)."""
    entry = bulk_entry(representation)
    user_id = admin.create_user({k: v for k, v in entry.items()
                                 if k in ("username", "email", "emailVerified", "enabled", "attributes")})
    response = admin.connection.raw_put(
        f"realms/{admin.connection.realm_name}/legacy-migration/users/{user_id}/state",
        data='{"kii_user_id": "%s", "state": "pending"}' % entry["kii_user_id"])
    return user_id, response


def comparable(admin, user_id: str) -> dict:
    user = admin.connection.raw_get(f"admin/realms/{admin.connection.realm_name}/users/{user_id}",
                                    userProfileMetadata="true").json()
    # What differs between two users by design (their ids, names, addresses, numbers) is left out.
    attributes = {k: v if k != "phone_number" else ["<own>"] for k, v in user.pop("attributes").items()
                  if k not in ("kii_user_id", "migration_state_changed_at")}
    for name in ("id", "username", "email", "createdTimestamp"):
        user.pop(name)
    roles = admin.get_all_roles_of_user(user_id)
    groups = [g["path"] for g in admin.get_user_groups(user_id)]
    return {**user, "attributes": attributes, "roles": roles, "groups": groups}


def test_a_bulk_user_is_what_the_admin_api_makes(writer, master_admin, import_realm, keycloak_url):
    master_admin.change_current_realm(import_realm.realm)
    # A default group, so that "joins the realm's default groups" can be told apart from "joins none".
    group_id = master_admin.create_group({"name": "every-user"})
    answer = master_admin.connection.raw_put(f"admin/realms/{import_realm.realm}/default-groups/{group_id}", data="{}")
    assert answer.status_code == 204, answer.text
    started_ms = int(time.time() * 1000)
    bulk = kii_user(import_realm.realm, uuid.uuid4().hex[:8])
    admin_made = kii_user(import_realm.realm, uuid.uuid4().hex[:8])
    assert writer.write([bulk]) == {bulk["id"]: ("created", None)}
    admin_id, answer = through_admin_api(writer.admin, admin_made)
    assert answer.status_code == 204, answer.text

    compared = comparable(master_admin, bulk["id"])
    assert compared == comparable(master_admin, admin_id)
    assert compared["groups"] == ["/every-user"] and "default-roles-" + import_realm.realm in \
        [role["name"] for role in compared["roles"]["realmMappings"]]
    assert compared["attributes"]["migration_state"] == ["pending"] and compared["userProfileMetadata"]
    made = master_admin.get_user(bulk["id"])
    assert made["createdTimestamp"] == 1700000000000          # Kii's creation time, kept
    assert master_admin.get_user(admin_id)["createdTimestamp"] >= started_ms

    # The console's searches find both ways alike.
    for user_id, rep in ((bulk["id"], bulk), (admin_id, admin_made)):
        found = {
            "username": master_admin.get_users({"search": rep["username"]}),
            "email": master_admin.get_users({"email": rep["email"], "exact": True}),
            "phone": master_admin.get_users({"q": f"phone_number:{rep['attributes']['phone_number'][0]}"}),
        }
        assert {kind: [u["id"] for u in users] for kind, users in found.items()} == \
            {"username": [user_id], "email": [user_id], "phone": [user_id]}

    # Both sign in (a password set as support would), both are edited as the console edits.
    remember(PASSWORD)
    for user_id, rep in ((bulk["id"], bulk), (admin_id, admin_made)):
        master_admin.set_user_password(user_id, PASSWORD, temporary=False)
        token = requests.post(f"{keycloak_url}/realms/{import_realm.realm}/protocol/openid-connect/token",
                              data={"grant_type": "password", "client_id": import_realm.app_client_id,
                                    "username": rep["username"], "password": PASSWORD, "scope": "openid"},
                              timeout=30)
        assert token.status_code == 200, token.text[:300]
        remember(token.json()["access_token"], token.json().get("refresh_token"), token.json().get("id_token"))
        user = master_admin.get_user(user_id)
        master_admin.update_user(user_id, {**user, "firstName": "Edited"})
        assert master_admin.get_user(user_id)["firstName"] == "Edited"


def test_the_same_batch_twice_changes_nothing_and_a_change_shows_at_once(writer, master_admin, import_realm):
    master_admin.change_current_realm(import_realm.realm)
    users = [kii_user(import_realm.realm, uuid.uuid4().hex[:8]) for _ in range(3)]
    assert {outcome for outcome, _ in writer.write(users).values()} == {"created"}
    before = [master_admin.get_user(u["id"]) for u in users]   # now in Keycloak's cache
    assert {outcome for outcome, _ in writer.write(users).values()} == {"unchanged"}
    assert [master_admin.get_user(u["id"]) for u in users] == before

    changed = {**users[0], "attributes": {**users[0]["attributes"], "locale": ["en"]}, "enabled": False}
    changed["attributes"].pop("migration_state")   # an update that leaves the state as it is
    assert writer.write([changed]) == {users[0]["id"]: ("updated", None)}
    after = master_admin.get_user(users[0]["id"])
    assert after["attributes"]["locale"] == ["en"] and after["enabled"] is False
    assert after["attributes"]["migration_state"] == ["pending"]


def test_a_refused_user_changes_nothing_and_the_batch_goes_on(writer, master_admin, import_realm):
    master_admin.change_current_realm(import_realm.realm)
    tag = uuid.uuid4().hex[:8]
    master_admin.create_user({"username": f"bulk-{tag}-taken", "email": f"taken-{tag}@example.com",
                              "enabled": True})
    by_name = {**kii_user(import_realm.realm, f"{tag}a"), "username": f"bulk-{tag}-taken"}
    by_email = {**kii_user(import_realm.realm, f"{tag}b"), "email": f"taken-{tag}@example.com"}
    fine = kii_user(import_realm.realm, f"{tag}c")
    same_batch = {**kii_user(import_realm.realm, f"{tag}d"), "email": fine["email"]}   # taken within the batch
    assert writer.write([by_name, by_email, fine, same_batch]) == {
        by_name["id"]: ("refused", "username_taken"), by_email["id"]: ("refused", "email_taken"),
        fine["id"]: ("created", None), same_batch["id"]: ("refused", "email_taken")}
    for refused in (by_name, by_email, same_batch):
        with pytest.raises(Exception):
            master_admin.get_user(refused["id"])
