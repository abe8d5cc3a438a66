"""Cognito's errors: each a small class with its wire name, HTTP status and default message.

One error handler (identity.cognito.api) turns any of them into
``{"__type": ..., "message": ...}`` with the ``x-amzn-ErrorType`` header, as
boto3 expects.
"""

from __future__ import annotations


class CognitoError(Exception):
    type = "InternalErrorException"
    status = 400
    message = ""

    def __init__(self, message: str | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message


class InternalError(CognitoError):
    type = "InternalErrorException"
    status = 500
    message = "Internal server error."


class InvalidParameterError(CognitoError):
    type = "InvalidParameterException"


class RequestTooLargeError(InvalidParameterError):
    status = 413


class NotAuthorizedError(CognitoError):
    type = "NotAuthorizedException"
    message = "Incorrect username or password."


class UserDisabledError(NotAuthorizedError):
    message = "User is disabled."


class PasswordAttemptsExceededError(NotAuthorizedError):
    message = "Password attempts exceeded"


class RefreshTokenRevokedError(NotAuthorizedError):
    message = "Refresh Token has been revoked"


class AccessTokenRevokedError(NotAuthorizedError):
    message = "Access Token has been revoked"


class PasswordResetRequiredError(CognitoError):
    type = "PasswordResetRequiredException"
    message = "Password reset required for the user"


class UserNotFoundError(CognitoError):
    """Only with IDENTITY_PREVENT_USER_EXISTENCE_ERRORS off: by default unknown users are not named."""
    type = "UserNotFoundException"
    message = "Username/client id combination not found."


class UserNotConfirmedError(CognitoError):
    type = "UserNotConfirmedException"
    message = "User is not confirmed."


class MissingAuthenticationTokenError(CognitoError):
    type = "MissingAuthenticationTokenException"
    message = "Missing Authentication Token"


class IncompleteSignatureError(CognitoError):
    type = "IncompleteSignatureException"


class InvalidSignatureError(CognitoError):
    type = "InvalidSignatureException"


class UnrecognizedClientError(CognitoError):
    type = "UnrecognizedClientException"
    message = "The security token included in the request is invalid."


class AccessDeniedError(CognitoError):
    type = "AccessDeniedException"


class ResourceNotFoundError(CognitoError):
    type = "ResourceNotFoundException"


class UnknownOperationError(CognitoError):
    type = "UnknownOperationException"


class TooManyRequestsError(CognitoError):
    type = "TooManyRequestsException"
    message = "Too many requests."


class LimitExceededError(CognitoError):
    type = "LimitExceededException"
    message = "Attempt limit exceeded, please try after some time."


class AliasExistsError(CognitoError):
    type = "AliasExistsException"
    message = "An account with the given email already exists."


class CodeMismatchError(CognitoError):
    type = "CodeMismatchException"
    message = "Invalid verification code provided, please try again."


class EnableSoftwareTokenMfaError(CognitoError):
    type = "EnableSoftwareTokenMFAException"
    message = "Code mismatch and fail enable Software Token MFA"


class SoftwareTokenMfaNotFoundError(CognitoError):
    type = "SoftwareTokenMFANotFoundException"
    message = "Software Token MFA has not been associated with the user"


class ExpiredCodeError(CognitoError):
    type = "ExpiredCodeException"
    message = "Invalid code provided, please request a code again."


class CodeDeliveryFailureError(CognitoError):
    type = "CodeDeliveryFailureException"
    message = "Unable to deliver the verification code. Please try again."


class InvalidPasswordError(CognitoError):
    type = "InvalidPasswordException"
    message = "Password does not conform to policy."


class UsernameExistsError(CognitoError):
    type = "UsernameExistsException"
    message = "User already exists"


POLICY_MESSAGES = {
    "invalidPasswordMinLengthMessage": "Password did not conform with policy: Password not long enough",
    "invalidPasswordMaxLengthMessage": "Password did not conform with policy: Password is too long",
    "invalidPasswordNotUsernameMessage": "Password did not conform with policy: Password must not be the username",
}


def policy_refusal(keycloak_key: str) -> InvalidPasswordError:
    """Keycloak's refusal of a password (its message key) as Cognito words it."""
    return InvalidPasswordError(POLICY_MESSAGES.get(keycloak_key, InvalidPasswordError.message))


class UnsupportedUserStateError(CognitoError):
    type = "UnsupportedUserStateException"
    message = "User is not in a state that allows this operation."
