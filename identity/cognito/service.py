"""The Cognito operations, composed: each operation is a method of one small service. No Flask here.

Each operation takes its validated request (a dict) and the client's address, and returns the
response body or raises a CognitoError; a Keycloak that cannot answer (KeycloakUnavailable) is
Cognito's InternalErrorException, said by the API's one error handler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from identity.codes.mail import MailQueue
from identity.cognito.accounts import AccountOperations
from identity.access_keys.service import AccessKeys
from identity.cognito.admin import AdminOperations
from identity.cognito.directory import AdminDirectory
from identity.cognito.clients import AppClients
from identity.cognito.mfa import MfaOperations
from identity.cognito.passwords import PasswordOperations
from identity.cognito.sessions import Sessions
from identity.cognito.tokens import AccessTokens
from identity.keycloak.gateway import KeycloakGateway
from identity.keycloak.oidc import OIDC
from identity.legacy.migration import LegacyMigration
from identity.signin.service import SignIn
from identity.signin.verifiers import Verifiers


@dataclass(frozen=True)
class CognitoService:
    sessions: Sessions            # InitiateAuth, GetUser, GlobalSignOut, RevokeToken
    passwords: PasswordOperations  # ForgotPassword, ConfirmForgotPassword, ChangePassword
    accounts: AccountOperations   # SignUp and its codes, attributes, DeleteUser
    mfa: MfaOperations            # AssociateSoftwareToken, VerifySoftwareToken, SetUserMFAPreference
    admin: AdminOperations        # the SigV4-signed admin operations on one user
    directory: AdminDirectory     # ListUsers and the groups (SigV4-signed too)
    access_keys: AccessKeys       # who may sign them
    tokens: AccessTokens
    sign_in: SignIn               # also the bridge's
    verifiers: Verifiers          # the SRP verifiers (the bridge's password-set)
    migration: LegacyMigration
    keycloak: KeycloakGateway
    oidc: OIDC
    clients: AppClients
    mailer: MailQueue

    def operation(self, name: str) -> Callable[[dict, str | None], dict]:
        """The method named "service.method" (identity.cognito.api.OPERATIONS)."""
        service, method = name.split(".")
        return getattr(getattr(self, service), method)
