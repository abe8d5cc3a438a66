"""InitiateAuth, GetUser, GlobalSignOut, RevokeToken. No Flask here.

A password sign-in is the use case identity.signin.service.SignIn; this module maps its outcome to
the answer Cognito gives (REFUSALS) and counts it.
"""

from __future__ import annotations

from identity.cognito import errors
from identity.cognito.clients import AppClients
from identity.cognito.tokens import AccessTokens
from identity.keycloak.errors import OAuthError
from identity.keycloak.gateway import KeycloakGateway
from identity.keycloak.oidc import OIDC
from identity.metrics import LOCKOUTS, SIGN_INS
from identity.signin.outcomes import Result, SignInOutcome
from identity.signin.service import SignIn

REFUSALS = {
    Result.WRONG_PASSWORD: errors.NotAuthorizedError,
    Result.LOCKED: errors.PasswordAttemptsExceededError,
    Result.THROTTLED: errors.PasswordAttemptsExceededError,
    Result.RESET_REQUIRED: errors.PasswordResetRequiredError,
    Result.DISABLED: errors.UserDisabledError,
    Result.NOT_CONFIRMED: errors.UserNotConfirmedError,
    Result.BUSY: errors.TooManyRequestsError,
    Result.UNAVAILABLE: errors.InternalError,
}


def refusal(outcome: SignInOutcome, client_id: str) -> errors.CognitoError:
    """The Cognito error for a sign-in that issued no tokens."""
    if outcome.result is Result.CLIENT_NOT_ALLOWED:
        return errors.NotAuthorizedError(f"Client {client_id} is not allowed this flow")
    return REFUSALS.get(outcome.result, errors.InternalError)()


def authentication_result(tokens: dict, with_refresh: bool = True) -> dict:
    result = {"AccessToken": tokens["access_token"], "IdToken": tokens.get("id_token", ""),
              "ExpiresIn": int(tokens.get("expires_in", 3600)), "TokenType": "Bearer"}
    if with_refresh and tokens.get("refresh_token"):
        result["RefreshToken"] = tokens["refresh_token"]
    return {"AuthenticationResult": result, "ChallengeParameters": {}}


def user_attributes(user: dict) -> list[dict]:
    """A Keycloak user's attributes as GetUser lists them."""
    attributes = [{"Name": "sub", "Value": user["id"]}]
    if user.get("email"):
        attributes += [{"Name": "email", "Value": user["email"]},
                       {"Name": "email_verified", "Value": "true" if user.get("emailVerified") else "false"}]
    for name, values in sorted((user.get("attributes") or {}).items()):
        if not values:
            continue
        if name == "kii_user_id":
            attributes.append({"Name": "custom:kii_user_id", "Value": values[0]})
        elif name.startswith("custom."):
            attributes.append({"Name": "custom:" + name[len("custom."):], "Value": values[0]})
        elif name in ("phone_number", "phone_number_verified", "locale", "name"):
            attributes.append({"Name": name, "Value": values[0]})
    return attributes


class Sessions:
    def __init__(self, sign_in: SignIn, oidc: OIDC, clients: AppClients, tokens: AccessTokens,
                 keycloak: KeycloakGateway):
        self.sign_in, self.oidc, self.clients = sign_in, oidc, clients
        self.tokens, self.keycloak = tokens, keycloak

    def initiate_auth(self, request: dict, client_ip: str | None) -> dict:
        client_id, flow, params = request["ClientId"], request["AuthFlow"], request["AuthParameters"]
        secret = self.clients.require(client_id)
        if flow == "USER_PASSWORD_AUTH":
            for name in ("USERNAME", "PASSWORD"):
                if not params.get(name):
                    raise errors.InvalidParameterError(f"Missing required parameter {name}")
            self.clients.check_secret_hash(client_id, params["USERNAME"], params.get("SECRET_HASH"))
            return self.password(client_id, secret, params["USERNAME"], params["PASSWORD"], client_ip)
        if flow in ("REFRESH_TOKEN_AUTH", "REFRESH_TOKEN"):
            if not params.get("REFRESH_TOKEN"):
                raise errors.InvalidParameterError("Missing required parameter REFRESH_TOKEN")
            self.clients.check_secret_hash(client_id, params.get("USERNAME"), params.get("SECRET_HASH"))
            try:
                tokens = self.oidc.refresh_grant(client_id, secret, params["REFRESH_TOKEN"])
            except OAuthError:
                raise errors.RefreshTokenRevokedError() from None
            return authentication_result(tokens, with_refresh=False)
        raise errors.InvalidParameterError(f"Unsupported AuthFlow: {flow}"[:200])

    def password(self, client_id: str, secret: str | None, username: str, password: str, client_ip) -> dict:
        outcome = self.sign_in.with_password(client_id, secret, username, password, client_ip)
        if outcome.signed_in:
            SIGN_INS.labels("success", outcome.path).inc()
            return authentication_result(outcome.tokens)
        error = refusal(outcome, client_id)
        SIGN_INS.labels(error.type, "api").inc()
        if isinstance(error, errors.PasswordAttemptsExceededError):
            LOCKOUTS.labels("sign_in").inc()
        raise error

    def get_user(self, request: dict, client_ip=None) -> dict:
        claims = self.tokens.verify(request["AccessToken"])
        user = self.keycloak.get_user(claims["sub"])
        return {"Username": user["username"], "UserAttributes": user_attributes(user)}

    def global_sign_out(self, request: dict, client_ip=None) -> dict:
        claims = self.tokens.verify(request["AccessToken"])
        self.keycloak.logout_user(claims["sub"])
        return {}

    def revoke_token(self, request: dict, client_ip=None) -> dict:
        client_id = request["ClientId"]
        secret = self.clients.check_client_secret(client_id, request.get("ClientSecret"))
        try:
            self.oidc.revoke(client_id, secret, request["Token"])
        except OAuthError as exc:
            if exc.error in ("unauthorized_client", "invalid_client"):
                raise errors.NotAuthorizedError("Invalid client for this token") from None
        return {}
