"""AssociateSoftwareToken, VerifySoftwareToken, SetUserMFAPreference: the use case is
identity.signin.mfa.SoftwareTokenMfa; this maps requests and outcomes to Cognito's. No Flask here.
"""

from __future__ import annotations

from identity.cognito import errors
from identity.cognito.tokens import AccessTokens
from identity.signin.mfa import NoPendingSecret, NotSetUp, SoftwareTokenMfa
from identity.signin.outcomes import Result, SignInOutcome

SOFTWARE_TOKEN_MFA = "SOFTWARE_TOKEN_MFA"


def mfa_refusal(outcome: SignInOutcome) -> errors.CognitoError:
    """The Cognito error of an app setup step that did not go through."""
    if outcome.result is Result.CODE_MISMATCH:
        return errors.EnableSoftwareTokenMfaError()
    if outcome.result is Result.INVALID_SESSION:
        return errors.NotAuthorizedError("Invalid session for the user.")
    if outcome.result is Result.THROTTLED:
        return errors.TooManyRequestsError()
    return errors.InternalError()


def user_mfa_fields(user: dict) -> dict:
    """GetUser's MFA fields: the authenticator app, the only method and so the preferred one. Keycloak's
    user representation says whether the user has one (`totp`), so no further call is made."""
    if not user.get("totp"):
        return {}
    return {"UserMFASettingList": [SOFTWARE_TOKEN_MFA], "PreferredMfaSetting": SOFTWARE_TOKEN_MFA}


def one_of(request: dict) -> str:
    """AccessToken or Session, exactly one (Cognito's rule for the two setup operations)."""
    if bool(request.get("AccessToken")) == bool(request.get("Session")):
        raise errors.InvalidParameterError("Exactly one of AccessToken and Session is required")
    return "AccessToken" if request.get("AccessToken") else "Session"


class MfaOperations:
    def __init__(self, mfa: SoftwareTokenMfa, tokens: AccessTokens):
        self.mfa, self.tokens = mfa, tokens

    def associate_software_token(self, request: dict, client_ip=None) -> dict:
        if one_of(request) == "AccessToken":
            claims = self.tokens.verify(request["AccessToken"])
            return {"SecretCode": self.mfa.associate(claims["sub"])}
        associated = self.mfa.associate_in_sign_in(request["Session"], client_ip)
        if isinstance(associated, SignInOutcome):
            raise mfa_refusal(associated)
        secret_code, session = associated
        return {"SecretCode": secret_code, "Session": session}

    def verify_software_token(self, request: dict, client_ip=None) -> dict:
        label = request.get("FriendlyDeviceName") or None
        if one_of(request) == "AccessToken":
            claims = self.tokens.verify(request["AccessToken"])
            try:
                outcome = self.mfa.verify(claims["sub"], request["UserCode"], label, client_ip)
            except NoPendingSecret:
                raise errors.SoftwareTokenMfaNotFoundError() from None
            if outcome is not None:
                raise mfa_refusal(outcome)
            return {"Status": "SUCCESS"}
        verified = self.mfa.verify_in_sign_in(request["Session"], request["UserCode"], label, client_ip)
        if isinstance(verified, SignInOutcome):
            raise mfa_refusal(verified)
        return {"Status": "SUCCESS", "Session": verified}

    def set_user_mfa_preference(self, request: dict, client_ip=None) -> dict:
        claims = self.tokens.verify(request["AccessToken"])
        for other in ("SMSMfaSettings", "EmailMfaSettings"):
            if (request.get(other) or {}).get("Enabled") or (request.get(other) or {}).get("PreferredMfa"):
                raise errors.InvalidParameterError(f"{other[:-11]} MFA is not offered by this user pool")
        settings = request.get("SoftwareTokenMfaSettings") or {}
        enabled = settings.get("Enabled")
        if settings.get("PreferredMfa") and enabled is None:
            enabled = True   # the only method there is: preferring it needs it on
        try:
            self.mfa.set_preference(claims["sub"], enabled, client_ip)
        except NotSetUp:
            raise errors.InvalidParameterError("User has not verified software token mfa") from None
        return {}
