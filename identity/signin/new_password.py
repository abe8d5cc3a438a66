"""NEW_PASSWORD_REQUIRED: a user whose password is right but temporary (support reset it in the
console with "Temporary" on, the console's default) chooses a new one, then gets tokens.

The challenge's Session (identity.signin.challenges) says whose sign-in it continues; it answers
once, and a password the realm's policy refuses leaves it good for a better one.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable, Protocol

from identity.keycloak.errors import KeycloakUnavailable, PasswordRefused
from identity.signin.challenges import ChallengeSessions, InvalidSession
from identity.signin.outcomes import Result, SignInOutcome
from identity.signin.service import SignIn
from identity.signin.verifiers import Verifiers

CHALLENGE = "NEW_PASSWORD_REQUIRED"


class NewPasswordKeycloak(Protocol):
    def set_password(self, user_id: str, password: str) -> None: ...

    def sign_in_ticket(self, user_id: str, client_id: str) -> str: ...


class NewPassword:
    def __init__(self, sign_in: SignIn, sessions: ChallengeSessions, verifiers: Verifiers,
                 keycloak: NewPasswordKeycloak, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.sign_in, self.sessions, self.verifiers, self.keycloak, self.now = \
            sign_in, sessions, verifiers, keycloak, now

    def session_for(self, outcome: SignInOutcome, client_id: str) -> str:
        """The Session of the challenge a NEW_PASSWORD_REQUIRED outcome asks the app to answer."""
        return self.sessions.seal(CHALLENGE, outcome.user_id, outcome.username, client_id, self.now())

    def answer(self, client_id: str, secret: str | None, session: str, new_password: str,
               client_ip: str | None) -> SignInOutcome:
        if self.sign_in.throttle.blocked(client_ip):
            return SignInOutcome(Result.THROTTLED)
        try:
            opened = self.sessions.open(session, CHALLENGE, client_id, self.now())
        except InvalidSession:
            self.sign_in.throttle.failure(client_ip)
            return SignInOutcome(Result.INVALID_SESSION)
        return self.sign_in.locked(opened.username, lambda: self._set(client_id, secret, opened, new_password,
                                                                       client_ip))

    def _set(self, client_id, secret, opened, new_password, client_ip) -> SignInOutcome:
        if self.verifiers.is_spent(opened.session_id):
            return SignInOutcome(Result.INVALID_SESSION)
        try:
            # A password set with "temporary" off also ends Keycloak's UPDATE_PASSWORD action.
            self.keycloak.set_password(opened.user_id, new_password)
        except PasswordRefused as refused:
            return SignInOutcome(Result.PASSWORD_REFUSED, detail=refused.error)
        except KeycloakUnavailable:
            return SignInOutcome(Result.UNAVAILABLE)
        if not self.verifiers.spend(opened.session_id, opened.expires_at):
            return SignInOutcome(Result.INVALID_SESSION)  # answered at the same moment elsewhere
        self.sign_in.seen(opened.user_id, opened.username, new_password)
        try:
            ticket = self.keycloak.sign_in_ticket(opened.user_id, client_id)
        except KeycloakUnavailable:
            return SignInOutcome(Result.UNAVAILABLE)
        outcome = self.sign_in.grant_with_ticket(client_id, secret, opened.username, opened.user_id, ticket,
                                                 client_ip)
        return outcome if not outcome.signed_in else SignInOutcome(Result.SIGNED_IN, outcome.tokens, "new_password")
