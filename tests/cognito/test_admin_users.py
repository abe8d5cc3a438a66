"""The admin operations that make, reset, change, sign in and group users, end to end: boto3 signing
with keys from `identity access-keys`, the real Keycloak, store and mail server."""

from __future__ import annotations

import json
import re
import uuid

import jwt
import pytest

from identity import audit
from tests.cognito.fixtures import settle_mail, store_row
from tests.cognito.test_admin_api import POOL_ID, access_key, admin_client  # noqa: F401 (a fixture)
from tests.cognito.test_sign_in import error_of, sign_in
from tests.conftest import TEST_REALM
from tests.used_secrets import remember

EVERYTHING = "*"


@pytest.fixture
def admin(live_service, access_key):  # noqa: F811
    return admin_client(live_service, access_key(EVERYTHING))


def invitation_password(smtp, address: str) -> str:
    text = smtp.next_to(address).get_body(("plain",)).get_content()
    password = re.search(r"(?:temporary password is|临时密码是) (\S+?)[.。]?\s", text).group(1)
    remember(password)
    return password


def admin_events(live_service, user_id: str) -> list[tuple[str, str]]:
    engine = live_service["app"].extensions["cognito"].service.access_keys.engine
    return [(e["event"], json.loads(e["detail"])["access_key"]) for e in audit.query(engine, user=user_id)
            if e["path"] == "admin" and e["event"].startswith("admin_")]


@pytest.fixture
def created(master_admin):
    """Users the test makes through AdminCreateUser, deleted afterwards."""
    names = []
    yield names
    master_admin.change_current_realm(TEST_REALM)
    for name in names:
        for user in master_admin.get_users({"username": name, "exact": True}):
            master_admin.delete_user(user["id"])


def test_create_user_invites_and_the_temporary_password_asks_for_a_new_one(live_service, admin, smtp, cognito,
                                                                            created):
    name = f"invited-{uuid.uuid4().hex[:8]}"
    email = f"{name}@example.com"
    created.append(name)
    made = admin.admin_create_user(UserPoolId=POOL_ID, Username=name, UserAttributes=[
        {"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"},
        {"Name": "name", "Value": "Invited Person"}])["User"]
    assert made["Username"] == name and made["UserStatus"] == "FORCE_CHANGE_PASSWORD" and made["Enabled"]
    assert {"Name": "email", "Value": email} in made["Attributes"]
    settle_mail(live_service)
    temporary = invitation_password(smtp, email)
    challenge = sign_in(cognito, name, temporary)
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    remember("Chosen-After-Invite-1")
    tokens = cognito.respond_to_auth_challenge(ClientId="mobile", ChallengeName="NEW_PASSWORD_REQUIRED",
                                               Session=challenge["Session"], ChallengeResponses={
                                                   "USERNAME": name, "NEW_PASSWORD": "Chosen-After-Invite-1"})
    assert tokens["AuthenticationResult"]["AccessToken"]
    assert admin.admin_get_user(UserPoolId=POOL_ID, Username=name)["UserStatus"] == "CONFIRMED"
    assert error_of(lambda: admin.admin_create_user(UserPoolId=POOL_ID, Username=name, UserAttributes=[
        {"Name": "email", "Value": f"other-{email}"}]))[0] == "UsernameExistsException"
    # RESEND only while the invitation is unanswered.
    assert error_of(lambda: admin.admin_create_user(UserPoolId=POOL_ID, Username=name, MessageAction="RESEND"))[0] \
        == "UnsupportedUserStateException"
    user_id = made["Attributes"][0]["Value"]
    assert [event for event, _ in admin_events(live_service, user_id)] == ["admin_created"]


def test_create_user_suppressed_then_resent(live_service, admin, smtp, cognito, created):
    name = f"quiet-{uuid.uuid4().hex[:8]}"
    email = f"{name}@example.com"
    created.append(name)
    remember("Given-Temporary-1")
    admin.admin_create_user(UserPoolId=POOL_ID, Username=name, TemporaryPassword="Given-Temporary-1",
                            MessageAction="SUPPRESS", UserAttributes=[{"Name": "email", "Value": email}])
    settle_mail(live_service)
    assert smtp.to(email) == []
    assert sign_in(cognito, name, "Given-Temporary-1")["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    admin.admin_create_user(UserPoolId=POOL_ID, Username=name, MessageAction="RESEND")
    settle_mail(live_service)
    resent = invitation_password(smtp, email)
    assert resent != "Given-Temporary-1"
    assert error_of(lambda: sign_in(cognito, name, "Given-Temporary-1"))[0] == "NotAuthorizedException"
    assert sign_in(cognito, name, resent)["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    # Mail is the only medium here; a weak temporary password is the policy's refusal, and nothing is made.
    assert error_of(lambda: admin.admin_create_user(UserPoolId=POOL_ID, Username=f"sms-{name}",
                                                    DesiredDeliveryMediums=["SMS"]))[0] == "InvalidParameterException"
    assert error_of(lambda: admin.admin_create_user(UserPoolId=POOL_ID, Username=f"weak-{name}",
                                                    TemporaryPassword="short", UserAttributes=[
                                                        {"Name": "email", "Value": f"weak-{email}"}]))[0] in (
        "InvalidPasswordException", "InvalidParameterException")
    assert error_of(lambda: admin.admin_get_user(UserPoolId=POOL_ID, Username=f"weak-{name}"))[0] == \
        "UserNotFoundException"


def test_reset_password_of_a_kii_user(live_service, admin, legacy_user, smtp, cognito):
    email = f"reset-{uuid.uuid4().hex[:8]}@example.com"
    kii = legacy_user(password="Kii-Reset-Old-1", email=email)
    tokens = sign_in(cognito, kii["username"], kii["password"])["AuthenticationResult"]   # migrates them
    kii2 = legacy_user(password="Kii-Reset-Old-2", email=f"two-{email}")

    admin.admin_reset_user_password(UserPoolId=POOL_ID, Username=kii2["username"])
    row = store_row(live_service["app"], kii2["kii_user_id"])
    assert row.state.value == "reset_required" and row.password_hash is None     # the hash ended, for good
    assert admin.admin_get_user(UserPoolId=POOL_ID, Username=kii2["username"])["UserStatus"] == "RESET_REQUIRED"
    assert error_of(lambda: sign_in(cognito, kii2["username"], "Kii-Reset-Old-2"))[0] == \
        "PasswordResetRequiredException"
    settle_mail(live_service)
    remember("After-Admin-Reset-2")
    cognito.confirm_forgot_password(ClientId="mobile", Username=kii2["username"], Password="After-Admin-Reset-2",
                                    ConfirmationCode=smtp.code_for(f"two-{email}"))
    assert sign_in(cognito, kii2["username"], "After-Admin-Reset-2")["AuthenticationResult"]["AccessToken"]
    assert admin.admin_get_user(UserPoolId=POOL_ID, Username=kii2["username"])["UserStatus"] == "CONFIRMED"

    # A migrated user: the password stops working, the sessions end, a code comes.
    admin.admin_reset_user_password(UserPoolId=POOL_ID, Username=kii["username"])
    assert error_of(lambda: sign_in(cognito, kii["username"], kii["password"]))[0] == "NotAuthorizedException"
    assert error_of(lambda: cognito.initiate_auth(AuthFlow="REFRESH_TOKEN_AUTH", ClientId="mobile", AuthParameters={
        "REFRESH_TOKEN": tokens["RefreshToken"]}))[0] == "NotAuthorizedException"
    settle_mail(live_service)
    assert smtp.code_for(email)
    assert [event for event, _ in admin_events(live_service, kii["id"])] == ["admin_password_reset"]


def test_update_and_delete_attributes(admin, kc_user):
    user = kc_user(password="Admin-Attr-Pass-1", email=f"attr-{uuid.uuid4().hex[:8]}@example.com",
                   emailVerified=True)
    new_email = f"changed-{uuid.uuid4().hex[:8]}@example.com"
    admin.admin_update_user_attributes(UserPoolId=POOL_ID, Username=user["username"], UserAttributes=[
        {"Name": "email", "Value": new_email}, {"Name": "email_verified", "Value": "true"},
        {"Name": "phone_number", "Value": "+8613800138000"}, {"Name": "custom:plan", "Value": "gold"}])
    attributes = {a["Name"]: a["Value"] for a in admin.admin_get_user(UserPoolId=POOL_ID,
                                                                      Username=user["username"])["UserAttributes"]}
    assert attributes["email"] == new_email and attributes["email_verified"] == "true"
    assert attributes["phone_number"] == "+8613800138000" and attributes["phone_number_verified"] == "false"
    assert attributes["custom:plan"] == "gold"
    admin.admin_delete_user_attributes(UserPoolId=POOL_ID, Username=user["username"],
                                       UserAttributeNames=["phone_number", "custom:plan"])
    attributes = {a["Name"] for a in admin.admin_get_user(UserPoolId=POOL_ID,
                                                          Username=user["username"])["UserAttributes"]}
    assert not attributes & {"phone_number", "phone_number_verified", "custom:plan"}
    for bad in ([{"Name": "sub", "Value": "x"}], [{"Name": "custom:kii_user_id", "Value": "x"}],
                [{"Name": "nickname_unknown", "Value": "x"}]):
        assert error_of(lambda: admin.admin_update_user_attributes(UserPoolId=POOL_ID, Username=user["username"],
                                                                   UserAttributes=bad))[0] == \
            "InvalidParameterException"


def test_admin_initiate_auth_migrates_a_kii_user(live_service, admin, legacy_user, kc_user, master_admin):
    kii = legacy_user(password="Kii-Admin-Auth-1")
    assert error_of(lambda: admin.admin_initiate_auth(
        UserPoolId=POOL_ID, ClientId="mobile", AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": kii["username"], "PASSWORD": "Wrong-Password-1"}))[0] == "NotAuthorizedException"
    result = admin.admin_initiate_auth(UserPoolId=POOL_ID, ClientId="mobile", AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                                       AuthParameters={"USERNAME": kii["username"], "PASSWORD": kii["password"]})
    tokens = result["AuthenticationResult"]
    assert jwt.decode(tokens["AccessToken"], options={"verify_signature": False})["username"] == kii["username"]
    row = store_row(live_service["app"], kii["kii_user_id"])
    assert row.state.value == "migrated" and row.password_hash is None
    refreshed = admin.admin_initiate_auth(UserPoolId=POOL_ID, ClientId="mobile", AuthFlow="REFRESH_TOKEN_AUTH",
                                          AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]})
    assert refreshed["AuthenticationResult"]["AccessToken"]
    assert error_of(lambda: admin.admin_initiate_auth(
        UserPoolId="cn-north-1_other", ClientId="mobile", AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": kii["username"], "PASSWORD": kii["password"]}))[0] == "ResourceNotFoundException"
    assert error_of(lambda: admin.admin_initiate_auth(
        UserPoolId=POOL_ID, ClientId="mobile", AuthFlow="USER_SRP_AUTH", AuthParameters={}))[0] == \
        "InvalidParameterException"

    # A temporary password: the challenge, answered with AdminRespondToAuthChallenge.
    user = kc_user(password="Admin-Auth-Perm-1")
    master_admin.change_current_realm(TEST_REALM)
    master_admin.set_user_password(user["id"], "Admin-Auth-Temp-1", temporary=True)
    remember("Admin-Auth-Temp-1", "Admin-Auth-New-1")
    challenge = admin.admin_initiate_auth(UserPoolId=POOL_ID, ClientId="mobile", AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                                          AuthParameters={"USERNAME": user["username"], "PASSWORD": "Admin-Auth-Temp-1"})
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    answered = admin.admin_respond_to_auth_challenge(
        UserPoolId=POOL_ID, ClientId="mobile", ChallengeName="NEW_PASSWORD_REQUIRED", Session=challenge["Session"],
        ChallengeResponses={"USERNAME": user["username"], "NEW_PASSWORD": "Admin-Auth-New-1"})
    assert answered["AuthenticationResult"]["IdToken"]


@pytest.fixture
def group(master_admin):
    master_admin.change_current_realm(TEST_REALM)
    name = f"caregivers-{uuid.uuid4().hex[:6]}"
    group_id = master_admin.create_group({"name": name, "attributes": {"precedence": ["3"]}})
    yield name
    master_admin.change_current_realm(TEST_REALM)
    master_admin.delete_group(group_id)


def test_groups(live_service, admin, kc_user, group, cognito):
    users = [kc_user(password="Admin-Group-Pass-1") for _ in range(3)]
    for user in users:
        admin.admin_add_user_to_group(UserPoolId=POOL_ID, Username=user["username"], GroupName=group)
    listed = admin.admin_list_groups_for_user(UserPoolId=POOL_ID, Username=users[0]["username"])["Groups"]
    assert [(g["GroupName"], g["UserPoolId"], g.get("Precedence")) for g in listed] == [(group, POOL_ID, 3)]
    members, token = [], None
    while True:
        page = admin.list_users_in_group(UserPoolId=POOL_ID, GroupName=group, Limit=2,
                                         **({"NextToken": token} if token else {}))
        members += [u["Username"] for u in page["Users"]]
        token = page.get("NextToken")
        if not token:
            break
    assert members == sorted(u["username"] for u in users)
    claims = jwt.decode(sign_in(cognito, users[0]["username"], users[0]["password"])["AuthenticationResult"][
        "AccessToken"], options={"verify_signature": False})
    assert claims["cognito:groups"] == [group]
    admin.admin_remove_user_from_group(UserPoolId=POOL_ID, Username=users[0]["username"], GroupName=group)
    assert admin.admin_list_groups_for_user(UserPoolId=POOL_ID, Username=users[0]["username"])["Groups"] == []
    assert error_of(lambda: admin.admin_add_user_to_group(UserPoolId=POOL_ID, Username=users[0]["username"],
                                                          GroupName="no-such-group"))[0] == "ResourceNotFoundException"
    assert [event for event, _ in admin_events(live_service, users[0]["id"])] == \
        ["admin_group_added", "admin_group_removed"]


def test_list_users_filters(admin, kc_user, legacy_user):
    tag = uuid.uuid4().hex[:8]
    alice = kc_user(username=f"lu-{tag}-alice", password="List-Users-Pass-1", email=f"alice-{tag}@example.com",
                    emailVerified=True, firstName="Alice", attributes={"phone_number": [f"+861380{tag[:6]}"]})
    bob = kc_user(username=f"lu-{tag}-bob", password="List-Users-Pass-1", email=f"bob-{tag}@example.com",
                  enabled=False)
    kii = legacy_user(password="Kii-List-1", email=f"kii-{tag}@example.com")

    def names(text: str, **extra) -> list[str]:
        return [u["Username"] for u in admin.list_users(UserPoolId=POOL_ID, Filter=text, **extra)["Users"]]

    assert names(f'username ^= "lu-{tag}"') == [alice["username"], bob["username"]]
    assert names(f'username = "lu-{tag}-bob"') == [bob["username"]]
    assert names(f'email = "ALICE-{tag}@example.com"') == [alice["username"]]
    assert names(f'email ^= "kii-{tag}"') == [kii["username"]]
    assert names(f'phone_number = "+861380{tag[:6]}"') == [alice["username"]]
    assert names(f'sub = "{bob["id"]}"') == [bob["username"]]
    assert alice["username"] in names('given_name = "Alice"', Limit=60)
    assert bob["username"] in names('status = "Disabled"') and alice["username"] not in names('status = "Disabled"')
    found = admin.list_users(UserPoolId=POOL_ID, Filter=f'email ^= "kii-{tag}"')["Users"][0]
    attributes = {a["Name"]: a["Value"] for a in found["Attributes"]}
    assert found["UserStatus"] == "CONFIRMED" and attributes["custom:kii_user_id"] == kii["kii_user_id"]
    only = admin.list_users(UserPoolId=POOL_ID, Filter=f'username = "lu-{tag}-alice"',
                            AttributesToGet=["email"])["Users"][0]
    assert only["Attributes"] == [{"Name": "email", "Value": f"alice-{tag}@example.com"}]
    for bad in ('email ~ "x"', 'custom:plan = "x"', 'email = x', 'status = "maybe"', 'cognito:user_status = "x"'):
        assert error_of(lambda: admin.list_users(UserPoolId=POOL_ID, Filter=bad))[0] == "InvalidParameterException"
    assert error_of(lambda: admin.list_users(UserPoolId=POOL_ID, PaginationToken="not-a-token"))[0] == \
        "InvalidParameterException"
    assert error_of(lambda: admin.list_users(UserPoolId=POOL_ID, Limit=61))[0] == "InvalidParameterException"
