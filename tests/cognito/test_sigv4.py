"""SigV4 verification (identity.cognito.sigv4) without servers: requests signed by boto3's own client
(real boto3, real signatures; only the sending is skipped, to alter a request byte by byte and move the
clock), verified; then each way of altering one refused with Cognito's error. The same refusals over
HTTP, against the running service, Keycloak and MariaDB: tests/cognito/test_admin_api.py."""

from __future__ import annotations

from datetime import datetime, timedelta
from unittest import mock
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from werkzeug.datastructures import Headers

from identity.cognito import errors, sigv4

KEY_ID, SECRET = "AKIAEXAMPLEEXAMPLE00", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "cn-north-1"


def signed(endpoint="http://127.0.0.1:9", region=REGION, secret=SECRET, when: datetime | None = None,
           operation="admin_get_user", **params):
    """What the service receives from boto3 for one call (nothing is sent)."""
    captured = []

    class Body:
        def stream(self, **kwargs):
            yield b"{}"

    def before_send(request, **kwargs):
        captured.append(request)
        return AWSResponse(request.url, 200, {}, Body())

    client = boto3.client("cognito-idp", endpoint_url=endpoint, region_name=region, aws_access_key_id=KEY_ID,
                          aws_secret_access_key=secret)
    client.meta.events.register("before-send", before_send)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when) if when else mock.MagicMock():
        getattr(client, operation)(**(params or {"UserPoolId": "cn-north-1_china", "Username": "alice"}))
    request = captured[-1]
    url = urlsplit(request.url)
    headers = Headers()
    for name, value in request.headers.items():
        headers.add(name, value.decode() if isinstance(value, bytes) else value)
    headers["Host"] = url.netloc
    return sigv4.Received(request.method, url.scheme, (url.netloc,), url.path or "/", url.query, headers,
                          request.body if isinstance(request.body, bytes) else (request.body or b"").encode())


def verify(received, now=None):
    return sigv4.verify(received, {KEY_ID: SECRET}.get, REGION, now=now)


def altered(received, body=None, **headers):
    copy = Headers(received.headers)
    for name, value in headers.items():
        copy[name.replace("_", "-")] = value
    return sigv4.Received(received.method, received.scheme, received.hosts, received.path, received.query, copy,
                          received.body if body is None else body)


def test_boto3_requests_verify():
    assert verify(signed()) == KEY_ID
    assert verify(signed(operation="list_users", UserPoolId="cn-north-1_china", Filter='email ^= "a"')) == KEY_ID
    assert verify(signed(operation="admin_update_user_attributes", UserPoolId="p", Username="u",
                         UserAttributes=[{"Name": "name", "Value": "Bøb ✓"}])) == KEY_ID
    assert verify(signed(endpoint="https://id.example.cn:8443")) == KEY_ID


def test_unsigned_headers_may_change_and_a_proxy_that_drops_the_port_is_met_by_the_public_host():
    received = signed(endpoint="https://id.example.cn:8443")
    assert verify(altered(received, User_Agent="curl", X_Extra="1")) == KEY_ID
    dropped = sigv4.Received(received.method, received.scheme, ("id.example.cn", "id.example.cn:8443"),
                             received.path, received.query, received.headers, received.body)
    assert verify(dropped) == KEY_ID


@pytest.mark.parametrize("change, error", [
    (lambda r: altered(r, body=r.body.replace(b"alice", b"alicf")), errors.InvalidSignatureError),
    (lambda r: altered(r, X_Amz_Target="AWSCognitoIdentityProviderService.AdminDeleteUser"),
     errors.InvalidSignatureError),
    (lambda r: altered(r, X_Amz_Content_Sha256="0" * 64), errors.InvalidSignatureError),
    (lambda r: altered(r, Authorization=r.headers["Authorization"].replace(KEY_ID, "AKIAUNKNOWNUNKNOWN00")),
     errors.UnrecognizedClientError),
    (lambda r: altered(r, Authorization="AWS4-HMAC-SHA256 Credential=x"), errors.IncompleteSignatureError),
    (lambda r: altered(r, Authorization=""), errors.MissingAuthenticationTokenError),
])
def test_an_altered_request_is_refused(change, error):
    with pytest.raises(error):
        verify(change(signed()))


def test_a_wrong_secret_region_or_clock_is_refused():
    with pytest.raises(errors.InvalidSignatureError):
        verify(signed(secret="not-the-secret-not-the-secret-not-the-se"))
    with pytest.raises(errors.InvalidSignatureError, match="scoped to a valid region"):
        verify(signed(region="us-east-1"))
    old = datetime.utcnow() - timedelta(minutes=6)
    with pytest.raises(errors.InvalidSignatureError, match="Signature expired"):
        verify(signed(when=old))
    assert verify(signed(when=old), now=old + timedelta(minutes=4)) == KEY_ID
    with pytest.raises(errors.InvalidSignatureError, match="not yet current"):
        verify(signed(), now=datetime.utcnow() - timedelta(minutes=6))


@pytest.mark.parametrize("actions, state, has_password, status", [
    ([], None, True, "CONFIRMED"),
    (["UPDATE_PASSWORD"], None, True, "FORCE_CHANGE_PASSWORD"),
    (["VERIFY_EMAIL"], None, True, "UNCONFIRMED"),
    ([], "pending", False, "CONFIRMED"),          # a Kii user not migrated yet: the old password signs in
    ([], "reset_required", False, "RESET_REQUIRED"),
    ([], "migrated", True, "CONFIRMED"),
    ([], None, False, "RESET_REQUIRED"),
])
def test_user_status(actions, state, has_password, status):
    from identity.cognito.admin import user_status

    user = {"requiredActions": actions, "attributes": {"migration_state": [state]} if state else {}}
    assert user_status(user, has_password) == status
