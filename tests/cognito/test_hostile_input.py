"""Hostile requests are refused early, in Cognito's error shape, and saturation is a quick refusal."""

from __future__ import annotations

import json
import socket
import time

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from identity.cognito.api import json_depth

TARGET = {"X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth",
          "Content-Type": "application/x-amz-json-1.1"}


def cognito_error(response) -> tuple[int, str, str]:
    body = json.loads(response.data)
    assert set(body) == {"__type", "message"}
    assert response.headers["x-amzn-ErrorType"] == body["__type"] + ":"
    return response.status_code, body["__type"], body["message"]


@pytest.fixture
def client(live_service):
    return live_service["app"].test_client()


def test_oversized_body_is_refused_before_it_is_read(client):
    body = json.dumps({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "mobile",
                       "AuthParameters": {"USERNAME": "x" * 70000, "PASSWORD": "p"}})
    assert cognito_error(client.post("/", data=body, headers=TARGET)) == \
        (413, "InvalidParameterException", "The request body exceeds 65536 bytes.")


def test_oversized_chunked_body_is_refused(live_service):
    # No Content-Length: the limit must hold while the body streams in.
    host, port = live_service["url"].removeprefix("http://").split(":")
    chunk = b"[" * 8192
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"X-Amz-Target: AWSCognitoIdentityProviderService.InitiateAuth\r\n"
                     b"Content-Type: application/x-amz-json-1.1\r\nConnection: close\r\n\r\n")
        try:
            for _ in range(10):
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            conn.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close as soon as it has answered
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < length(answer):
            received = conn.recv(65536)
            if not received:  # closed before a whole answer: the assertions below say what came
                break
            answer += received
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 413 REQUEST ENTITY TOO LARGE"
    assert json.loads(body)["__type"] == "InvalidParameterException"


def length(answer: bytes) -> int:
    for line in answer.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 1 << 30


@pytest.mark.parametrize("body", ["[" * 60000, '{"a":' * 10000 + "1" + "}" * 10000,
                                  json.dumps({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "mobile",
                                              "AuthParameters": {"USERNAME": [[[[[[[[["x"]]]]]]]]]}})])
def test_deeply_nested_json_is_refused_before_it_is_parsed(client, body):
    started = time.monotonic()
    assert cognito_error(client.post("/", data=body, headers=TARGET)) == \
        (400, "InvalidParameterException", "The request body is nested too deeply.")
    assert time.monotonic() - started < 2


def test_json_depth_ignores_brackets_inside_strings():
    assert json_depth(b'{"a": "[[[[[[[[[[[[[[[[[[[[", "b": "\\"[[[[[[[[[[[["}') == 1
    assert json_depth(b'{"UserAttributes": [{"Name": "email"}]}') == 3
    assert json_depth(b"") == 0


def test_saturation_is_too_many_requests_not_a_timeout(live_service):
    # One attempt: the SDKs retry TooManyRequestsException with back-off, which is the point of it,
    # but here the time of a single refusal is measured.
    cognito = boto3.client("cognito-idp", region_name="cn-north-1", endpoint_url=live_service["url"],
                           config=Config(signature_version=UNSIGNED,
                                         retries={"mode": "standard", "total_max_attempts": 1}))
    gate = live_service["app"].extensions["admission"]
    taken = 0
    while gate.slots.acquire(blocking=False):  # every slot busy, as under a load past saturation
        taken += 1
    try:
        started = time.monotonic()
        with pytest.raises(ClientError) as info:
            cognito.initiate_auth(AuthFlow="USER_PASSWORD_AUTH", ClientId="mobile",
                                  AuthParameters={"USERNAME": "someone", "PASSWORD": "whatever-1"})
        assert info.value.response["Error"]["Code"] == "TooManyRequestsException"
        assert time.monotonic() - started < gate.wait_s + 2
        token = live_service["app"].test_client().post("/oauth2/token", data={"client_id": "mobile",
                                                                              "grant_type": "refresh_token"})
        assert token.status_code == 503 and token.headers["Retry-After"] == "1"
    finally:
        for _ in range(taken):
            gate.slots.release()
    assert taken == live_service["app"].config["MAX_IN_FLIGHT"]
    with pytest.raises(ClientError) as info:  # admitted again: an ordinary answer
        cognito.initiate_auth(AuthFlow="USER_PASSWORD_AUTH", ClientId="mobile",
                              AuthParameters={"USERNAME": "someone", "PASSWORD": "whatever-1"})
    assert info.value.response["Error"]["Code"] == "NotAuthorizedException"


@pytest.mark.parametrize("operation,body", [
    ("SignUp", {"ClientId": "mobile", "Username": "surrogate-user@example.com", "Password": "Abc-\ud800-Def-123"}),
    ("ConfirmForgotPassword", {"ClientId": "mobile", "Username": "nobody-here", "ConfirmationCode": "123456",
                               "Password": "Abc-\ud800-Def-123"}),
    ("ChangePassword", {"AccessToken": "not-a-token", "PreviousPassword": "Old-Pass-123",
                        "ProposedPassword": "Abc-\ud800-Def-123"}),
])
def test_a_new_password_that_is_not_text_is_refused_before_anything_is_written(client, operation, body):
    # A lone surrogate cannot be typed again (no UTF-8 form): Keycloak must never be given one.
    raw = json.dumps(body)  # ensure_ascii: the lone surrogate travels as the escape \ud800
    headers = {**TARGET, "X-Amz-Target": f"AWSCognitoIdentityProviderService.{operation}"}
    field = "ProposedPassword" if operation == "ChangePassword" else "Password"
    assert cognito_error(client.post("/", data=raw, headers=headers)) == (
        400, "InvalidParameterException",
        f"1 validation error detected: Value at '{field}' failed to satisfy constraint: "
        "Member must be text (no lone surrogate)")
