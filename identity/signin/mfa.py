"""Authenticator-app MFA: Cognito's SOFTWARE_TOKEN_MFA and MFA_SETUP challenges, and the signed-in
user's AssociateSoftwareToken, VerifySoftwareToken and SetUserMFAPreference.

The app is Keycloak's own OTP credential (identity.signin.software_tokens makes its secret), so the
login page and the service ask for the same codes, and Keycloak decides when one is asked: its
direct-grant flow answers "one-time code required" (MFA_REQUIRED) for a user with an app, and a
pending CONFIGURE_TOTP action (set in the console) is MFA_SETUP. A code is checked by Keycloak, in
the token request (a wrong one counts as a failed login) or by the provider as it stores a new app.

A confirmed app is in force at once, as one set up at Keycloak's own page is: there is no
"verified but not enabled" state to drift from Keycloak's. SetUserMFAPreference with Enabled false
removes it (docs/sign-in.md).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable, Protocol

from identity import audit
from identity.keycloak.errors import KeycloakUnavailable
from identity.legacy.models import utcnow
from identity.signin.challenges import ChallengeSessions, InvalidSession, OpenedSession
from identity.signin.outcomes import Result, SignInOutcome
from identity.signin.service import SignIn
from identity.signin.software_tokens import PendingSecrets, new_secret, secret_code
from identity.signin.verifiers import Verifiers

SOFTWARE_TOKEN_MFA = "SOFTWARE_TOKEN_MFA"
MFA_SETUP = "MFA_SETUP"
# The Sessions of MFA setup's later steps: AssociateSoftwareToken's (it carries the secret), and
# VerifySoftwareToken's (the app is stored; RespondToAuthChallenge MFA_SETUP ends the sign-in).
ASSOCIATED = "MFA_SETUP associated"
VERIFIED = "MFA_SETUP verified"
CHALLENGES = {Result.MFA_REQUIRED: SOFTWARE_TOKEN_MFA, Result.MFA_SETUP: MFA_SETUP}


class MfaKeycloak(Protocol):
    def sign_in_ticket(self, user_id: str, client_id: str, code_checked: bool = False) -> str: ...

    def software_tokens(self, user_id: str) -> list[dict]: ...

    def set_software_token(self, user_id: str, secret: str, code: str, label: str | None) -> bool: ...

    def remove_software_tokens(self, user_id: str) -> None: ...


class NoPendingSecret(Exception):
    """VerifySoftwareToken with no AssociateSoftwareToken before it (or one that expired)."""


class NotSetUp(Exception):
    """SetUserMFAPreference enabling an authenticator app the user never confirmed."""


class SoftwareTokenMfa:
    def __init__(self, sign_in: SignIn, sessions: ChallengeSessions, verifiers: Verifiers,
                 pending: PendingSecrets, keycloak: MfaKeycloak,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.sign_in, self.sessions, self.verifiers, self.pending, self.keycloak, self.now = \
            sign_in, sessions, verifiers, pending, keycloak, now
        self.throttle = sign_in.throttle

    def session_for(self, outcome: SignInOutcome, client_id: str) -> str:
        """The Session of the challenge an MFA_REQUIRED or MFA_SETUP outcome asks the app to answer."""
        return self.sessions.seal(CHALLENGES[outcome.result], outcome.user_id, outcome.username, client_id,
                                  self.now())

    def device_name(self, user_id: str) -> str | None:
        """The name the user gave their app (SOFTWARE_TOKEN_MFA's FRIENDLY_DEVICE_NAME)."""
        tokens = self.keycloak.software_tokens(user_id)
        return tokens[0].get("userLabel") if tokens else None

    # --- RespondToAuthChallenge SOFTWARE_TOKEN_MFA ----------------------------------------------------

    def answer(self, client_id: str, secret: str | None, session: str, code: str,
               client_ip: str | None) -> SignInOutcome:
        """Tokens for the right code. A wrong one is CODE_MISMATCH, counted by Keycloak and against the
        address, and the Session stays good for another try until it expires."""
        opened = self._open(session, SOFTWARE_TOKEN_MFA, client_id, client_ip)
        if isinstance(opened, SignInOutcome):
            return opened
        return self.sign_in.locked(opened.username, lambda: self._grant(client_id, secret, opened, client_ip,
                                                                         otp=code))

    # --- MFA_SETUP: AssociateSoftwareToken, VerifySoftwareToken, RespondToAuthChallenge -----------------

    # AssociateSoftwareToken and VerifySoftwareToken name no client: the Session says which.

    def associate_in_sign_in(self, session: str, client_ip: str | None) -> tuple[str, str] | SignInOutcome:
        """(SecretCode, the next Session) for a sign-in asked to set an app up."""
        opened = self._open(session, MFA_SETUP, None, client_ip)
        if isinstance(opened, SignInOutcome):
            return opened
        key = new_secret()
        return secret_code(key), self.sessions.seal(ASSOCIATED, opened.user_id, opened.username, opened.client_id,
                                                    self.now(), secret=key)

    def verify_in_sign_in(self, session: str, code: str, label: str | None,
                          client_ip: str | None) -> str | SignInOutcome:
        """The Session that ends the sign-in (RespondToAuthChallenge MFA_SETUP) once Keycloak holds the
        app; CODE_MISMATCH for a code that is not the secret's."""
        opened = self._open(session, ASSOCIATED, None, client_ip)
        if isinstance(opened, SignInOutcome):
            return opened
        outcome = self._store(opened.user_id, opened.secret, code, label, client_ip, path="mfa_setup")
        if outcome is not None:
            return outcome
        return self.sessions.seal(VERIFIED, opened.user_id, opened.username, opened.client_id, self.now())

    def finish_setup(self, client_id: str, secret: str | None, session: str,
                     client_ip: str | None) -> SignInOutcome:
        opened = self._open(session, VERIFIED, client_id, client_ip)
        if isinstance(opened, SignInOutcome):
            return opened
        # The code that set the app up was this sign-in's second factor: Keycloak asks no other.
        return self.sign_in.locked(opened.username, lambda: self._grant(client_id, secret, opened, client_ip,
                                                                         code_checked=True))

    # --- a signed-in user's app ------------------------------------------------------------------------

    def associate(self, user_id: str) -> str:
        key = new_secret()
        self.pending.hold(user_id, key)
        return secret_code(key)

    def verify(self, user_id: str, code: str, label: str | None, client_ip: str | None) -> SignInOutcome | None:
        """None once Keycloak holds the app; CODE_MISMATCH, THROTTLED or UNAVAILABLE otherwise.
        NoPendingSecret without an AssociateSoftwareToken before it."""
        if self.throttle.blocked(client_ip):
            return SignInOutcome(Result.THROTTLED)
        key = self.pending.get(user_id)
        if key is None:
            raise NoPendingSecret()
        outcome = self._store(user_id, key, code, label, client_ip, path="settings")
        if outcome is None:
            self.pending.forget(user_id)
        return outcome

    def set_preference(self, user_id: str, enabled: bool | None, client_ip: str | None = None) -> None:
        """Enabled false removes the user's app; true requires one (NotSetUp otherwise); None leaves it."""
        if enabled is False:
            had = bool(self.keycloak.software_tokens(user_id))
            self.keycloak.remove_software_tokens(user_id)
            if had:
                self._audit("mfa_app_removed", user_id, client_ip, "settings")
        elif enabled is True and not self.keycloak.software_tokens(user_id):
            raise NotSetUp()

    def enabled(self, user_id: str) -> bool:
        return bool(self.keycloak.software_tokens(user_id))

    # --- the steps ---------------------------------------------------------------------------------------

    def _open(self, session: str, challenge: str, client_id: str | None,
              client_ip: str | None) -> OpenedSession | SignInOutcome:
        if self.throttle.blocked(client_ip):
            return SignInOutcome(Result.THROTTLED)
        try:
            opened = self.sessions.open(session, challenge, client_id, self.now())
        except InvalidSession:
            self.throttle.failure(client_ip)
            return SignInOutcome(Result.INVALID_SESSION)
        if self.verifiers.is_spent(opened.session_id):
            return SignInOutcome(Result.INVALID_SESSION)
        return opened

    def _store(self, user_id: str, key: str, code: str, label: str | None, client_ip,
               path: str) -> SignInOutcome | None:
        try:
            stored = self.keycloak.set_software_token(user_id, key, code, label)
        except KeycloakUnavailable:
            return SignInOutcome(Result.UNAVAILABLE)
        if not stored:
            self.throttle.failure(client_ip)
            return SignInOutcome(Result.CODE_MISMATCH)
        self._audit("mfa_app_set", user_id, client_ip, path)
        return None

    def _audit(self, event: str, user_id: str, client_ip: str | None, path: str) -> None:
        audit.record_now(self.verifiers.engine, event, utcnow(), keycloak_user_id=user_id, client=client_ip,
                         path=path)

    def _grant(self, client_id, secret, opened: OpenedSession, client_ip, otp: str | None = None,
               code_checked: bool = False) -> SignInOutcome:
        if self.verifiers.is_spent(opened.session_id):  # answered while this one waited for the lock
            return SignInOutcome(Result.INVALID_SESSION)
        try:
            ticket = self.keycloak.sign_in_ticket(opened.user_id, client_id, code_checked=code_checked)
        except KeycloakUnavailable:
            return SignInOutcome(Result.UNAVAILABLE)
        outcome = self.sign_in.grant_with_ticket(client_id, secret, opened.username, opened.user_id, ticket,
                                                 client_ip, otp=otp)
        if outcome.signed_in:
            self.verifiers.spend(opened.session_id, opened.expires_at)
            return SignInOutcome(Result.SIGNED_IN, outcome.tokens, "software_token_mfa" if otp else "mfa_setup")
        return outcome
