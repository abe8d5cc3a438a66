"""The SigV4-signed admin operations end to end: keys issued with `identity access-keys`, boto3 signing as a
backend does, the real Keycloak and store. Every refusal changes nothing and is in the audit trail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from identity import audit
from tests.cognito.test_sign_in import error_of, sign_in
from tests.conftest import TEST_REALM
from tests.used_secrets import remember

POOL_ID = "cn-north-1_china"


def cli(live_service, *args):
    result = live_service["app"].test_cli_runner().invoke(args=["access-keys", *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def access_key(live_service):
    """An access key issued as the operator does; deleted afterwards."""
    made = []

    def issue(*operations: str) -> dict:
        name = f"backend-{len(made)}-{id(made)}"
        line = next(line for line in cli(live_service, "create", "--name", name, "--allow",
                                         ",".join(operations)).splitlines() if line.startswith("{"))
        key = json.loads(line)
        remember(key["SecretAccessKey"])
        made.append(name)
        return key

    yield issue
    for name in made:
        live_service["app"].test_cli_runner().invoke(args=["access-keys", "delete", "--name", name])


def admin_client(live_service, key: dict, region: str = "cn-north-1"):
    return boto3.client("cognito-idp", endpoint_url=live_service["url"], region_name=region,
                        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                        config=Config(retries={"max_attempts": 1}))


def test_admin_get_user(live_service, access_key, kc_user, legacy_user, master_admin):
    admin = admin_client(live_service, access_key("AdminGetUser"))
    user = kc_user(password="Admin-Api-Pass-1", email="admin-api-1@example.com", emailVerified=True)
    found = admin.admin_get_user(UserPoolId=POOL_ID, Username=user["username"])
    attributes = {a["Name"]: a["Value"] for a in found["UserAttributes"]}
    assert found["Username"] == user["username"] and found["Enabled"] and found["UserStatus"] == "CONFIRMED"
    assert attributes["sub"] == user["id"] and attributes["email"] == "admin-api-1@example.com"
    assert found["UserCreateDate"].year >= 2026
    # By email too, as Cognito's alias.
    assert admin.admin_get_user(UserPoolId=POOL_ID, Username="admin-api-1@example.com")["Username"] == user["username"]

    kii = legacy_user(password="Kii-Admin-Api-1")
    found = admin.admin_get_user(UserPoolId=POOL_ID, Username=kii["username"])
    attributes = {a["Name"]: a["Value"] for a in found["UserAttributes"]}
    assert found["UserStatus"] == "CONFIRMED"   # the old password signs them in (docs/admin-api.md)
    assert attributes["custom:kii_user_id"] == kii["kii_user_id"] and attributes["custom:migration_state"] == "pending"

    master_admin.change_current_realm(TEST_REALM)
    master_admin.set_user_password(user["id"], "Admin-Api-Temporary-1", temporary=True)
    remember("Admin-Api-Temporary-1")
    assert admin.admin_get_user(UserPoolId=POOL_ID, Username=user["username"])["UserStatus"] == "FORCE_CHANGE_PASSWORD"

    assert error_of(lambda: admin.admin_get_user(UserPoolId="cn-north-1_other", Username=user["username"]))[0] == \
        "ResourceNotFoundException"
    assert error_of(lambda: admin.admin_get_user(UserPoolId=POOL_ID, Username="nobody-here"))[0] == \
        "UserNotFoundException"


def test_disable_and_enable(live_service, access_key, kc_user, cognito):
    key = access_key("AdminGetUser", "AdminDisableUser", "AdminEnableUser")
    admin = admin_client(live_service, key)
    user = kc_user(password="Admin-Api-Pass-2")
    tokens = sign_in(cognito, user["username"], user["password"])["AuthenticationResult"]
    admin.admin_disable_user(UserPoolId=POOL_ID, Username=user["username"])
    assert not admin.admin_get_user(UserPoolId=POOL_ID, Username=user["username"])["Enabled"]
    assert error_of(lambda: sign_in(cognito, user["username"], user["password"])) == \
        ("NotAuthorizedException", "User is disabled.")
    assert error_of(lambda: cognito.get_user(AccessToken=tokens["AccessToken"]))[0] == "NotAuthorizedException"
    admin.admin_enable_user(UserPoolId=POOL_ID, Username=user["username"])
    assert sign_in(cognito, user["username"], user["password"])["AuthenticationResult"]["AccessToken"]
    events = [(e["event"], json.loads(e["detail"])["access_key"])
              for e in audit.query(live_service["app"].extensions["cognito"].service.access_keys.engine,
                                   user=user["id"]) if e["path"] == "admin"]
    assert events == [("admin_disabled", key["Name"]), ("admin_enabled", key["Name"])]


def test_refusals_change_nothing(live_service, access_key, kc_user, cognito):
    key = access_key("AdminGetUser")
    user = kc_user(password="Admin-Api-Pass-3")
    admin = admin_client(live_service, key)

    def disable(client) -> str:
        return error_of(lambda: client.admin_disable_user(UserPoolId=POOL_ID, Username=user["username"]))[0]

    # Not granted.
    assert disable(admin) == "AccessDeniedException"
    # Unsigned (the app's client: no credentials).
    assert error_of(lambda: cognito.admin_get_user(UserPoolId=POOL_ID, Username=user["username"]))[0] == \
        "MissingAuthenticationTokenException"
    # Another region in the signature's scope.
    assert disable(admin_client(live_service, key, region="us-east-1")) == "InvalidSignatureException"
    # One changed body byte after signing.
    tampered = admin_client(live_service, access_key("AdminDisableUser"))

    def change_a_byte(request, **kwargs):
        request.body = request.body.replace(user["username"].encode(), user["username"][:-1].encode() + b"x")

    tampered.meta.events.register("before-send", change_a_byte)
    assert disable(tampered) == "InvalidSignatureException"
    # A wrong secret; an unknown key.
    assert disable(admin_client(live_service, {**key, "SecretAccessKey": "x" * 40})) == "InvalidSignatureException"
    assert disable(admin_client(live_service, {**key, "AccessKeyId": "AKIAUNKNOWNUNKNOWN00"})) == \
        "UnrecognizedClientException"
    # Signed six minutes ago (a replay, a skewed clock).
    from datetime import datetime, timedelta, timezone
    from unittest import mock

    with mock.patch("botocore.auth.get_current_datetime",
                    return_value=datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=6)):
        code, message = error_of(lambda: admin_client(live_service, access_key("AdminDisableUser")).admin_disable_user(
            UserPoolId=POOL_ID, Username=user["username"]))
    assert code == "InvalidSignatureException" and message.startswith("Signature expired")
    # A disabled key.
    allowed = access_key("AdminDisableUser")
    cli(live_service, "disable", "--name", allowed["Name"])
    assert disable(admin_client(live_service, allowed)) == "UnrecognizedClientException"

    assert sign_in(cognito, user["username"], user["password"])["AuthenticationResult"]["AccessToken"]
    refused = [json.loads(e["detail"])["error"] for e in audit.query(
        live_service["app"].extensions["cognito"].service.access_keys.engine, limit=100000)
        if e["event"] == "admin_refused"]
    assert {"AccessDeniedException", "InvalidSignatureException", "UnrecognizedClientException",
            "MissingAuthenticationTokenException"} <= set(refused)


def test_the_key_list_never_shows_a_secret(live_service, access_key):
    key = access_key("AdminGetUser")
    listed = [json.loads(line) for line in cli(live_service, "list").splitlines()]
    mine = next(entry for entry in listed if entry["Name"] == key["Name"])
    assert mine == {"AccessKeyId": key["AccessKeyId"], "Name": key["Name"], "Enabled": True,
                    "Operations": ["AdminGetUser"]}
    assert key["SecretAccessKey"] not in json.dumps(listed)


def test_set_password_on_a_kii_user_ends_the_legacy_hash(live_service, access_key, legacy_user, cognito):
    from tests.cognito.fixtures import store_row

    admin = admin_client(live_service, access_key("AdminSetUserPassword", "AdminGetUser"))
    kii = legacy_user(password="Kii-Admin-Old-1")
    remember("Set-By-Backend-1", "Temporary-By-Backend-1")
    admin.admin_set_user_password(UserPoolId=POOL_ID, Username=kii["username"], Password="Set-By-Backend-1",
                                  Permanent=True)
    row = store_row(live_service["app"], kii["kii_user_id"])
    assert row.state.value == "migrated" and row.password_hash is None   # never both
    assert error_of(lambda: sign_in(cognito, kii["username"], "Kii-Admin-Old-1"))[0] == "NotAuthorizedException"
    assert sign_in(cognito, kii["username"], "Set-By-Backend-1")["AuthenticationResult"]["AccessToken"]

    admin.admin_set_user_password(UserPoolId=POOL_ID, Username=kii["username"], Password="Temporary-By-Backend-1")
    assert admin.admin_get_user(UserPoolId=POOL_ID, Username=kii["username"])["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    assert sign_in(cognito, kii["username"], "Temporary-By-Backend-1")["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    assert error_of(lambda: admin.admin_set_user_password(UserPoolId=POOL_ID, Username=kii["username"],
                                                          Password="short", Permanent=True))[0] in (
        "InvalidPasswordException", "InvalidParameterException")


def test_global_sign_out_and_delete(live_service, access_key, legacy_user, cognito):
    from tests.cognito.fixtures import store_row

    admin = admin_client(live_service, access_key("AdminUserGlobalSignOut", "AdminDeleteUser", "AdminGetUser"))
    kii = legacy_user(password="Kii-Admin-Old-2")
    tokens = sign_in(cognito, kii["username"], kii["password"])["AuthenticationResult"]
    admin.admin_user_global_sign_out(UserPoolId=POOL_ID, Username=kii["username"])
    assert error_of(lambda: cognito.initiate_auth(AuthFlow="REFRESH_TOKEN_AUTH", ClientId="mobile", AuthParameters={
        "REFRESH_TOKEN": tokens["RefreshToken"]}))[0] == "NotAuthorizedException"
    admin.admin_delete_user(UserPoolId=POOL_ID, Username=kii["username"])
    assert error_of(lambda: admin.admin_get_user(UserPoolId=POOL_ID, Username=kii["username"]))[0] == \
        "UserNotFoundException"
    assert store_row(live_service["app"], kii["kii_user_id"]) is None
    assert error_of(lambda: sign_in(cognito, kii["username"], kii["password"]))[0] == "NotAuthorizedException"


def aws(live_service, key: dict, *args: str) -> subprocess.CompletedProcess:
    """The AWS CLI (awscli, its own botocore) as a backend's operator runs it, pointed at the service by
    the per-service endpoint variable (docs/admin-api.md); in its own process, as it is run."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
           "AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
           "AWS_DEFAULT_REGION": "cn-north-1", "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
           "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER": live_service["url"]}
    return subprocess.run([str(Path(sys.executable).parent / "aws"), "cognito-idp", *args, "--output", "json"],
                          env=env, capture_output=True, text=True, timeout=120)


def test_the_aws_cli(live_service, access_key, kc_user):
    key = access_key("AdminGetUser", "ListUsers")
    email = f"cli-{uuid.uuid4().hex[:8]}@example.com"
    user = kc_user(password="Admin-Cli-Pass-1", email=email, emailVerified=True)
    got = aws(live_service, key, "admin-get-user", "--user-pool-id", POOL_ID, "--username", user["username"])
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["Username"] == user["username"]
    listed = aws(live_service, key, "list-users", "--user-pool-id", POOL_ID, "--filter", f'email = "{email}"')
    assert listed.returncode == 0, listed.stderr
    assert [u["Username"] for u in json.loads(listed.stdout)["Users"]] == [user["username"]]
    refused = aws(live_service, key, "admin-disable-user", "--user-pool-id", POOL_ID, "--username", user["username"])
    assert refused.returncode != 0 and "AccessDeniedException" in refused.stderr
    assert key["SecretAccessKey"] not in refused.stderr + got.stdout + listed.stdout
