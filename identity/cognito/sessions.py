"""InitiateAuth, GetUser, GlobalSignOut, RevokeToken. No Flask here.

A password sign-in is the use case identity.signin.service.SignIn; this module maps its outcome to
the answer Cognito gives (REFUSALS) and counts it.
"""

from __future__ import annotations

from functools import partial

from identity.cognito import errors, schemas
from identity.cognito.clients import AppClients
from identity.cognito.mfa import user_mfa_fields
from identity.cognito.tokens import AccessTokens
from identity.keycloak.errors import OAuthError
from identity.keycloak.gateway import KeycloakGateway
from identity.keycloak.oidc import OIDC
from identity.metrics import LOCKOUTS, SIGN_INS
from identity.signin.mfa import MFA_SETUP, SOFTWARE_TOKEN_MFA, SoftwareTokenMfa
from identity.signin.outcomes import Result, SignInOutcome
from identity.signin.service import SignIn
from identity.signin.new_password import NewPassword
from identity.signin.srp import SrpSignIn
from identity.srp import SrpError, parse_public_value

REFUSALS = {
    Result.WRONG_PASSWORD: errors.NotAuthorizedError,
    Result.LOCKED: errors.PasswordAttemptsExceededError,
    Result.THROTTLED: errors.PasswordAttemptsExceededError,
    Result.RESET_REQUIRED: errors.PasswordResetRequiredError,
    Result.DISABLED: errors.UserDisabledError,
    Result.NOT_CONFIRMED: errors.UserNotConfirmedError,
    Result.BUSY: errors.TooManyRequestsError,
    Result.UNAVAILABLE: errors.InternalError,
    Result.INVALID_SESSION: partial(errors.NotAuthorizedError, "Invalid session for the user."),
    Result.CODE_MISMATCH: partial(errors.CodeMismatchError, "Invalid code or auth state for the user."),
    # Only where no challenge can be asked:
    Result.NEW_PASSWORD_REQUIRED: errors.PasswordResetRequiredError,
    Result.MFA_REQUIRED: errors.NotAuthorizedError,
    Result.MFA_SETUP: errors.NotAuthorizedError,
}


def refusal(outcome: SignInOutcome, client_id: str) -> errors.CognitoError:
    """The Cognito error for a sign-in that issued no tokens."""
    if outcome.result is Result.CLIENT_NOT_ALLOWED:
        return errors.NotAuthorizedError(f"Client {client_id} is not allowed this flow")
    if outcome.result is Result.PASSWORD_REFUSED:
        return errors.policy_refusal(outcome.detail or "")
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


def required(params: dict, *names: str) -> None:
    for name in names:
        if not params.get(name):
            raise errors.InvalidParameterError(f"Missing required parameter {name}")


class Sessions:
    def __init__(self, sign_in: SignIn, srp_sign_in: SrpSignIn, new_password: NewPassword, mfa: SoftwareTokenMfa,
                 oidc: OIDC, clients: AppClients, tokens: AccessTokens, keycloak: KeycloakGateway):
        self.sign_in, self.srp, self.new_password, self.mfa = sign_in, srp_sign_in, new_password, mfa
        self.oidc, self.clients, self.tokens, self.keycloak = oidc, clients, tokens, keycloak

    def initiate_auth(self, request: dict, client_ip: str | None) -> dict:
        client_id, flow, params = request["ClientId"], request["AuthFlow"], request["AuthParameters"]
        secret = self.clients.require(client_id)
        if flow == "USER_PASSWORD_AUTH":
            required(params, "USERNAME", "PASSWORD")
            self.clients.check_secret_hash(client_id, params["USERNAME"], params.get("SECRET_HASH"))
            return self.password(client_id, secret, params["USERNAME"], params["PASSWORD"], client_ip)
        if flow == "USER_SRP_AUTH":
            required(params, "USERNAME", "SRP_A")
            self.clients.check_secret_hash(client_id, params["USERNAME"], params.get("SECRET_HASH"))
            return self.srp_challenge(client_id, params["USERNAME"], params["SRP_A"], client_ip)
        if flow in ("REFRESH_TOKEN_AUTH", "REFRESH_TOKEN"):
            required(params, "REFRESH_TOKEN")
            self.clients.check_secret_hash(client_id, params.get("USERNAME"), params.get("SECRET_HASH"))
            return authentication_result(self._refreshed(client_id, secret, params["REFRESH_TOKEN"]),
                                         with_refresh=False)
        raise errors.InvalidParameterError(f"Unsupported AuthFlow: {flow}"[:200])

    def _refreshed(self, client_id: str, secret: str | None, refresh_token: str) -> dict:
        try:
            return self.oidc.refresh_grant(client_id, secret, refresh_token)
        except OAuthError:
            raise errors.RefreshTokenRevokedError() from None

    def get_tokens_from_refresh_token(self, request: dict, client_ip=None) -> dict:
        """Amplify v6's refresh. Without refresh-token rotation Cognito gives no new refresh token."""
        client_id = request["ClientId"]
        secret = self.clients.check_client_secret(client_id, request.get("ClientSecret"))
        tokens = self._refreshed(client_id, secret, request["RefreshToken"])
        return {"AuthenticationResult": authentication_result(tokens, with_refresh=False)["AuthenticationResult"]}

    def srp_challenge(self, client_id: str, username: str, srp_a_hex: str, client_ip) -> dict:
        try:
            srp_a = parse_public_value(srp_a_hex)
        except SrpError:
            raise errors.InvalidParameterError("SRP_A is not a valid SRP public value") from None
        challenge = self.srp.challenge(client_id, username, srp_a, client_ip)
        if isinstance(challenge, SignInOutcome):
            self._refuse(challenge, client_id)
        return {"ChallengeName": "PASSWORD_VERIFIER", "ChallengeParameters": challenge.parameters}

    def respond_to_auth_challenge(self, request: dict, client_ip=None) -> dict:
        client_id, name, answers = request["ClientId"], request["ChallengeName"], request["ChallengeResponses"]
        secret = self.clients.require(client_id)
        if name == "PASSWORD_VERIFIER":
            required(answers, "USERNAME", "PASSWORD_CLAIM_SECRET_BLOCK", "PASSWORD_CLAIM_SIGNATURE", "TIMESTAMP")
            self.clients.check_secret_hash(client_id, answers["USERNAME"], answers.get("SECRET_HASH"))
            outcome = self.srp.answer(client_id, secret, answers["USERNAME"], answers["PASSWORD_CLAIM_SECRET_BLOCK"],
                                      answers["PASSWORD_CLAIM_SIGNATURE"], answers["TIMESTAMP"], client_ip)
            return self._answer(outcome, client_id)
        if name == "NEW_PASSWORD_REQUIRED":
            required(answers, "USERNAME", "NEW_PASSWORD")
            if not request.get("Session"):
                raise errors.InvalidParameterError("Missing required parameter Session")
            self.clients.check_secret_hash(client_id, answers["USERNAME"], answers.get("SECRET_HASH"))
            new_password = schemas.load(schemas.NewPasswordSchema(), {"NEW_PASSWORD": answers["NEW_PASSWORD"]})
            outcome = self.new_password.answer(client_id, secret, request["Session"], new_password["NEW_PASSWORD"],
                                               client_ip)
            return self._answer(outcome, client_id)
        if name in (SOFTWARE_TOKEN_MFA, MFA_SETUP):
            return self._answer(self._mfa_answer(client_id, secret, name, answers, request, client_ip), client_id)
        raise errors.InvalidParameterError(f"Unsupported ChallengeName: {name}"[:200])

    def _mfa_answer(self, client_id, secret, name, answers, request, client_ip) -> SignInOutcome:
        required(answers, "USERNAME", *(["SOFTWARE_TOKEN_MFA_CODE"] if name == SOFTWARE_TOKEN_MFA else []))
        if not request.get("Session"):
            raise errors.InvalidParameterError("Missing required parameter Session")
        self.clients.check_secret_hash(client_id, answers["USERNAME"], answers.get("SECRET_HASH"))
        if name == MFA_SETUP:
            return self.mfa.finish_setup(client_id, secret, request["Session"], client_ip)
        code = answers["SOFTWARE_TOKEN_MFA_CODE"]
        if not (code.isascii() and code.isdigit() and len(code) == 6):
            raise errors.InvalidParameterError("SOFTWARE_TOKEN_MFA_CODE must be 6 digits")
        return self.mfa.answer(client_id, secret, request["Session"], code, client_ip)

    def password(self, client_id: str, secret: str | None, username: str, password: str, client_ip) -> dict:
        return self._answer(self.sign_in.with_password(client_id, secret, username, password, client_ip), client_id)

    def _answer(self, outcome: SignInOutcome, client_id: str) -> dict:
        """The tokens of a sign-in, or its refusal as Cognito words it; counted either way."""
        if outcome.signed_in:
            SIGN_INS.labels("success", outcome.path).inc()
            return authentication_result(outcome.tokens)
        if outcome.result is Result.NEW_PASSWORD_REQUIRED:
            return {"ChallengeName": "NEW_PASSWORD_REQUIRED", "Session": self.new_password.session_for(outcome, client_id),
                    "ChallengeParameters": {"USER_ID_FOR_SRP": outcome.user_id, "requiredAttributes": "[]",
                                            "userAttributes": "{}"}}
        if outcome.result is Result.MFA_REQUIRED:
            parameters = {"USER_ID_FOR_SRP": outcome.user_id,
                          "FRIENDLY_DEVICE_NAME": self.mfa.device_name(outcome.user_id) or "Authenticator app"}
            return {"ChallengeName": SOFTWARE_TOKEN_MFA, "Session": self.mfa.session_for(outcome, client_id),
                    "ChallengeParameters": parameters}
        if outcome.result is Result.MFA_SETUP:
            return {"ChallengeName": MFA_SETUP, "Session": self.mfa.session_for(outcome, client_id),
                    "ChallengeParameters": {"MFAS_CAN_SETUP": '["SOFTWARE_TOKEN_MFA"]'}}
        self._refuse(outcome, client_id)

    def _refuse(self, outcome: SignInOutcome, client_id: str):
        error = refusal(outcome, client_id)
        SIGN_INS.labels(error.type, "api").inc()
        if isinstance(error, errors.PasswordAttemptsExceededError):
            LOCKOUTS.labels("sign_in").inc()
        raise error

    def get_user(self, request: dict, client_ip=None) -> dict:
        claims = self.tokens.verify(request["AccessToken"])
        user = self.keycloak.get_user(claims["sub"])
        return {"Username": user["username"], "UserAttributes": user_attributes(user),
                **user_mfa_fields(user)}

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
