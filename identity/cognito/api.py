"""The Cognito JSON API at `POST /`: adapts HTTP to identity.cognito.service, and errors to Cognito's shape.

OPERATIONS is the table of the operations: the service method each is, and its request schema.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, request

from identity.admission import Overloaded
from identity import audit
from identity.cognito import errors, schemas, sigv4
from identity.keycloak.errors import KeycloakUnavailable
from identity.legacy.models import utcnow as audit_now
from identity.metrics import ADMIN_REQUESTS, OPERATION_SECONDS

log = logging.getLogger(__name__)
bp = Blueprint("cognito", __name__)
TARGET_PREFIX = "AWSCognitoIdentityProviderService."
CONTENT_TYPE = "application/x-amz-json-1.1"

OPERATIONS = {
    "InitiateAuth": ("sessions.initiate_auth", schemas.InitiateAuthSchema()),
    "RespondToAuthChallenge": ("sessions.respond_to_auth_challenge", schemas.RespondToAuthChallengeSchema()),
    "GetTokensFromRefreshToken": ("sessions.get_tokens_from_refresh_token", schemas.GetTokensFromRefreshTokenSchema()),
    "GetUser": ("sessions.get_user", schemas.AccessTokenSchema()),
    "GlobalSignOut": ("sessions.global_sign_out", schemas.AccessTokenSchema()),
    "RevokeToken": ("sessions.revoke_token", schemas.RevokeTokenSchema()),
    "ForgotPassword": ("passwords.forgot_password", schemas.ForgotPasswordSchema()),
    "ConfirmForgotPassword": ("passwords.confirm_forgot_password", schemas.ConfirmForgotPasswordSchema()),
    "SignUp": ("accounts.sign_up", schemas.SignUpSchema()),
    "ConfirmSignUp": ("accounts.confirm_sign_up", schemas.ConfirmSignUpSchema()),
    "ResendConfirmationCode": ("accounts.resend_confirmation_code", schemas.ForgotPasswordSchema()),
    "ChangePassword": ("passwords.change_password", schemas.ChangePasswordSchema()),
    "UpdateUserAttributes": ("accounts.update_user_attributes", schemas.UpdateUserAttributesSchema()),
    "VerifyUserAttribute": ("accounts.verify_user_attribute", schemas.VerifyUserAttributeSchema()),
    "GetUserAttributeVerificationCode": ("accounts.get_user_attribute_verification_code",
                                         schemas.AttributeNameSchema()),
    "DeleteUserAttributes": ("accounts.delete_user_attributes", schemas.DeleteUserAttributesSchema()),
    "DeleteUser": ("accounts.delete_user", schemas.AccessTokenSchema()),
    "AssociateSoftwareToken": ("mfa.associate_software_token", schemas.AssociateSoftwareTokenSchema()),
    "VerifySoftwareToken": ("mfa.verify_software_token", schemas.VerifySoftwareTokenSchema()),
    "SetUserMFAPreference": ("mfa.set_user_mfa_preference", schemas.SetUserMfaPreferenceSchema()),
    # The admin operations: SigV4-signed by an access key granted the operation (docs/admin-api.md).
    "AdminGetUser": ("admin.admin_get_user", schemas.AdminUserSchema()),
    "AdminDisableUser": ("admin.admin_disable_user", schemas.AdminUserSchema()),
    "AdminEnableUser": ("admin.admin_enable_user", schemas.AdminUserSchema()),
    "AdminSetUserPassword": ("admin.admin_set_user_password", schemas.AdminSetUserPasswordSchema()),
    "AdminUserGlobalSignOut": ("admin.admin_user_global_sign_out", schemas.AdminUserSchema()),
    "AdminDeleteUser": ("admin.admin_delete_user", schemas.AdminUserSchema()),
    "AdminCreateUser": ("admin.admin_create_user", schemas.AdminCreateUserSchema()),
    "AdminResetUserPassword": ("admin.admin_reset_user_password", schemas.AdminUserSchema()),
    "AdminUpdateUserAttributes": ("admin.admin_update_user_attributes", schemas.AdminUpdateUserAttributesSchema()),
    "AdminDeleteUserAttributes": ("admin.admin_delete_user_attributes", schemas.AdminDeleteUserAttributesSchema()),
    "AdminInitiateAuth": ("admin.admin_initiate_auth", schemas.AdminInitiateAuthSchema()),
    "AdminRespondToAuthChallenge": ("admin.admin_respond_to_auth_challenge",
                                    schemas.AdminRespondToAuthChallengeSchema()),
    "ListUsers": ("directory.list_users", schemas.ListUsersSchema()),
    "ListUsersInGroup": ("directory.list_users_in_group", schemas.ListUsersInGroupSchema()),
    "AdminAddUserToGroup": ("directory.admin_add_user_to_group", schemas.AdminGroupSchema()),
    "AdminRemoveUserFromGroup": ("directory.admin_remove_user_from_group", schemas.AdminGroupSchema()),
    "AdminListGroupsForUser": ("directory.admin_list_groups_for_user", schemas.AdminListGroupsForUserSchema()),
}
SIGNED = frozenset(name for name in OPERATIONS if name.startswith(("Admin", "List")))


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
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise errors.RequestTooLargeError(f"The request body exceeds {limit} bytes.")
    if request.content_length is None:
        # Chunked: werkzeug would cut the body at the limit without a word; read one byte more.
        raw = request.environ["wsgi.input"].read(limit + 1)
        if len(raw) > limit:
            raise errors.RequestTooLargeError(f"The request body exceeds {limit} bytes.")
    else:
        raw = request.get_data(cache=False)
    if json_depth(raw) > current_app.config["MAX_JSON_DEPTH"]:
        raise errors.InvalidParameterError("The request body is nested too deeply.")
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise errors.InvalidParameterError("The request body is not valid JSON.") from None
    method, schema = OPERATIONS[operation]
    service = current_app.extensions["cognito"].service
    caller = _signed_by(service, operation, raw) if operation in SIGNED else None
    try:
        with current_app.extensions["admission"].admit("cognito"), OPERATION_SECONDS.labels(operation).time():
            validated = schemas.load(schema, body)
            if caller is not None:
                validated["_caller"] = caller
            answer = service.operation(method)(validated, request.remote_addr)
    except Overloaded:
        raise errors.TooManyRequestsError() from None
    except errors.CognitoError as exc:
        if caller is not None:
            ADMIN_REQUESTS.labels(operation, exc.type).inc()
        raise
    if caller is not None:
        ADMIN_REQUESTS.labels(operation, "ok").inc()
    return _response(answer)


def _signed_by(service, operation: str, raw: bytes) -> str:
    """The name of the access key that signed this request and may call `operation`; Cognito's refusal
    otherwise, counted and in the audit trail."""
    base = urlsplit(current_app.config["PUBLIC_BASE_URL"])
    received_host = (request.environ.get("werkzeug.proxy_fix.orig") or {}).get("HTTP_HOST") or request.host
    received = sigv4.Received(request.method, request.scheme, tuple(dict.fromkeys([received_host, base.netloc])),
                              request.path, request.environ.get("QUERY_STRING", ""), request.headers, raw)
    keys = service.access_keys
    found = {}

    def secret_for(key_id: str):
        key = keys.lookup(key_id)
        found["key"] = key
        return key.secret if key is not None and key.enabled else None

    try:
        sigv4.verify(received, secret_for, region=service.admin.region)
        key = found["key"]
        if not key.allows(operation):
            raise errors.AccessDeniedError(
                f"User: arn:aws:iam::000000000000:user/{key.name} is not authorized to perform: cognito-idp:{operation} "
                f"on resource: arn:aws:cognito-idp:{service.admin.region}:000000000000:userpool/{service.admin.pool} "
                f"because no identity-based policy allows the cognito-idp:{operation} action")
    except errors.CognitoError as exc:
        ADMIN_REQUESTS.labels(operation, exc.type).inc()
        key = found.get("key")
        audit.record_now(service.access_keys.engine, "admin_refused", audit_now(), client=request.remote_addr,
                         path="admin", detail={"operation": operation, "error": exc.type,
                                               "access_key": key.name if key is not None else None})
        raise
    return key.name


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth(raw: bytes) -> int:
    """The deepest nesting of brackets outside strings, found before parsing (the parser recurses)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


@bp.errorhandler(errors.CognitoError)
def cognito_error(exc: errors.CognitoError):
    return _response({"__type": exc.type, "message": exc.message}, exc.status, exc.type)


@bp.errorhandler(KeycloakUnavailable)
def keycloak_unavailable(exc: KeycloakUnavailable):
    # Whatever operation asked, Keycloak not answering is Cognito's internal error (apps retry it).
    log.warning("keycloak unavailable", extra={"error": str(exc)[:80]})
    error = errors.InternalError()
    return _response({"__type": error.type, "message": error.message}, error.status, error.type)


@bp.app_errorhandler(405)
def wrong_method(exc):
    # The JSON API is POST only; its clients still get an answer they can parse.
    if request.path != "/":
        return exc
    return _response({"__type": "UnknownOperationException", "message": f"{request.method[:16]} is not supported; "
                      "the API takes POST."}, 405, "UnknownOperationException")


@bp.errorhandler(Exception)
def unexpected(exc: Exception):
    # Never a stack trace on the wire; the log has the type (and a scrubbed text).
    log.exception("unhandled error in the Cognito API")
    error = errors.InternalError()
    return _response({"__type": error.type, "message": error.message}, error.status, error.type)
