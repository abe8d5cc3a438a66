"""The Cognito JSON API at `POST /`: adapts HTTP to identity.cognito.service, and errors to Cognito's shape."""

from __future__ import annotations

import json
import logging
import uuid

from flask import Blueprint, Response, current_app, request

from identity.cognito import errors, schemas
from identity.metrics import OPERATION_SECONDS

log = logging.getLogger(__name__)
bp = Blueprint("cognito", __name__)
TARGET_PREFIX = "AWSCognitoIdentityProviderService."
CONTENT_TYPE = "application/x-amz-json-1.1"

OPERATIONS = {
    "InitiateAuth": ("initiate_auth", schemas.InitiateAuthSchema()),
    "GetUser": ("get_user", schemas.AccessTokenSchema()),
    "GlobalSignOut": ("global_sign_out", schemas.AccessTokenSchema()),
    "RevokeToken": ("revoke_token", schemas.RevokeTokenSchema()),
    "ForgotPassword": ("forgot_password", schemas.ForgotPasswordSchema()),
    "ConfirmForgotPassword": ("confirm_forgot_password", schemas.ConfirmForgotPasswordSchema()),
    "SignUp": ("sign_up", schemas.SignUpSchema()),
    "ConfirmSignUp": ("confirm_sign_up", schemas.ConfirmSignUpSchema()),
    "ResendConfirmationCode": ("resend_confirmation_code", schemas.ForgotPasswordSchema()),
    "ChangePassword": ("change_password", schemas.ChangePasswordSchema()),
    "UpdateUserAttributes": ("update_user_attributes", schemas.UpdateUserAttributesSchema()),
    "VerifyUserAttribute": ("verify_user_attribute", schemas.VerifyUserAttributeSchema()),
    "DeleteUser": ("delete_user", schemas.AccessTokenSchema()),
}


def _response(body: dict, status: int = 200, error_type: str | None = None) -> Response:
    response = Response(json.dumps(body, ensure_ascii=False), status=status, content_type=CONTENT_TYPE)
    response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
    if error_type:
        response.headers["x-amzn-ErrorType"] = f"{error_type}:"
    return response


@bp.post("/")
def dispatch():
    target = request.headers.get("X-Amz-Target", "")
    operation = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else None
    if operation not in OPERATIONS:
        raise errors.UnknownOperationError(f"Unknown operation {operation or target or '(none)'}"[:200])
    try:
        body = json.loads(request.get_data(cache=False) or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise errors.InvalidParameterError("The request body is not valid JSON.") from None
    method, schema = OPERATIONS[operation]
    with OPERATION_SECONDS.labels(operation).time():
        validated = schemas.load(schema, body)
        service = current_app.extensions["cognito"].service
        return _response(getattr(service, method)(validated, request.remote_addr))


@bp.errorhandler(errors.CognitoError)
def cognito_error(exc: errors.CognitoError):
    return _response({"__type": exc.type, "message": exc.message}, exc.status, exc.type)


@bp.errorhandler(Exception)
def unexpected(exc: Exception):
    # Never a stack trace on the wire; the log has the type (and a scrubbed text).
    log.exception("unhandled error in the Cognito API")
    error = errors.InternalError()
    return _response({"__type": error.type, "message": error.message}, error.status, error.type)
