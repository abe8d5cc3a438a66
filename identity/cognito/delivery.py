"""Codes by email for the account operations: who gets one, and the answer for everyone else. No Flask.

Existence (docs/hardening.md, "User existence"): an operation that would send a
code answers a name nobody can receive one at (unknown, disabled or deleted,
no verified address, already confirmed) as it answers a real user, after the
same steps: a code is issued and counted under a keyed stand-in for the name,
and never sent. Mail goes out after the answer (identity.codes.mail.MailQueue).
"""

from __future__ import annotations

import logging

from identity.codes import service as code_errors
from identity.codes.service import Codes, Issued
from identity.codes.mail import MailQueue
from identity.cognito import errors
from identity.cognito.throttle import ClientThrottle
from identity.keycloak.gateway import KeycloakGateway
from identity.legacy.identifiers import normalise_identifiers
from identity.legacy.store import LegacyStore
from identity.metrics import CODE_DELIVERY_FAILURES, CODES_SENT

log = logging.getLogger(__name__)

CODE_ERRORS = {
    code_errors.CodeMismatch: errors.CodeMismatchError,
    code_errors.CodeExpired: errors.ExpiredCodeError,
    code_errors.TooManyAttempts: errors.LimitExceededError,
    code_errors.RateLimited: errors.LimitExceededError,
    code_errors.Locked: errors.LimitExceededError,
}
# Stand-in destinations for names nobody receives codes at: initials as real addresses have them.
STAND_IN_LOCAL = "abcdefghijklmnopqrstuvwxyz0123456789"
STAND_IN_DOMAINS = ("qq.com", "163.com", "126.com", "gmail.com", "sina.com", "hotmail.com", "outlook.com",
                    "foxmail.com", "yeah.net", "sohu.com", "aliyun.com", "139.com", "icloud.com", "yahoo.com")


def mask_email(email: str) -> str:
    """As Cognito shows a destination: d***@e***"""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain[:1]}***"


def delivery(email: str) -> dict:
    return {"CodeDeliveryDetails": {"Destination": mask_email(email), "DeliveryMedium": "EMAIL",
                                    "AttributeName": "email"}}


def usable(user: dict | None, row) -> bool:
    """An account that may get codes: enabled in Keycloak, not disabled (deleted) in the legacy store."""
    return user is not None and user.get("enabled") is not False and not (row is not None and row["disabled"])


def can_reset(user: dict | None, row) -> bool:
    # As Cognito: only to a verified address (an unverified one could be someone else's).
    return usable(user, row) and bool(user.get("email")) and bool(user.get("emailVerified"))


def can_confirm(user: dict | None, row) -> bool:
    return usable(user, row) and bool(user.get("email")) and "VERIFY_EMAIL" in (user.get("requiredActions") or [])


def name_key(username: str) -> str:
    """A typed name as the account look-up reads it: a phone however written, an email, a loginName."""
    found = normalise_identifiers(username)
    return found.get("phone") or found.get("email") or found["username"]


class CodeDelivery:
    def __init__(self, codes: Codes, mailer: MailQueue, throttle: ClientThrottle, keycloak: KeycloakGateway,
                 store: LegacyStore, prevent_user_existence_errors: bool = True):
        self.codes, self.mailer, self.throttle = codes, mailer, throttle
        self.keycloak, self.store = keycloak, store
        self.prevent_user_existence_errors = prevent_user_existence_errors

    def account(self, username: str):
        """(Keycloak user, legacy row or None) for a loginName, email or phone; (None, None) when nobody matches."""
        row = self.store.find(**normalise_identifiers(username))
        if row is not None and row["keycloak_user_id"]:
            return self.keycloak.get_user(row["keycloak_user_id"]), row
        text = username.strip()
        found = self.keycloak.find_user(email=text) if "@" in text else self.keycloak.find_user(username=text)
        return found, None

    # --- the answer for a name that gets no code -----------------------------------------------

    def stand_in_subject(self, username: str) -> str:
        """Whose codes a name that gets none has: limits and checks count per normalised name."""
        return "name:" + self.codes.digest("name", name_key(username))[:48]

    def _stand_in_destination(self, username: str) -> str:
        key = name_key(username)
        local, at, domain = key.partition("@")
        if at and local and domain:  # a real account found by this address would show its initials
            return key
        digest = bytes.fromhex(self.codes.digest("destination", key))
        return f"{STAND_IN_LOCAL[digest[0] % len(STAND_IN_LOCAL)]}@{STAND_IN_DOMAINS[digest[1] % len(STAND_IN_DOMAINS)]}"

    def refuse_unless_hidden(self, user, row, reason: errors.CognitoError) -> None:
        """With existence errors allowed (IDENTITY_PREVENT_USER_EXISTENCE_ERRORS false), say why nothing
        is sent; by default, return: the caller answers as for a real user."""
        if self.prevent_user_existence_errors:
            return
        if user is None:
            raise errors.UserNotFoundError()
        if not usable(user, row):
            raise errors.UserDisabledError()
        raise reason

    def stand_in(self, purpose: str, username: str, user: dict | None) -> dict:
        """The answer of a real delivery, after the same work (a code issued and counted), nothing sent."""
        self.issue(purpose, self.stand_in_subject(username), None)
        return delivery((user or {}).get("email") or self._stand_in_destination(username))

    # --- codes ---------------------------------------------------------------------------------

    def issue(self, purpose: str, subject: str, destination: str | None) -> Issued:
        try:
            return self.codes.issue(purpose, subject, destination)
        except code_errors.CodeError as exc:
            raise CODE_ERRORS[type(exc)]() from None

    def mail(self, issued: Issued, user: dict, purpose: str, template: str, email: str, minutes: int) -> dict:
        """Queue the code's mail; an undelivered code is withdrawn (no older one becomes current)."""
        locale = ((user.get("attributes") or {}).get("locale") or [None])[0]

        def done(error: str | None) -> None:
            if error is None:
                CODES_SENT.labels(purpose).inc()
                log.info("code sent", extra={"purpose": purpose, "keycloak_user_id": user["id"]})
                return
            self.codes.void(issued.id)
            CODE_DELIVERY_FAILURES.labels(purpose).inc()
            log.error("code not delivered", extra={"error": error, "purpose": purpose,
                                                   "keycloak_user_id": user["id"]})

        self.mailer.submit(email, template, locale, {"code": issued.code, "minutes": minutes}, done)
        return delivery(email)

    def send(self, user: dict, purpose: str, template: str, email: str, minutes: int) -> dict:
        return self.mail(self.issue(purpose, user["id"], email), user, purpose, template, email, minutes)

    def check(self, purpose: str, subject: str, code: str, destination: str | None, client_ip) -> int:
        """The code's id if right; wrong ones count against the client's address, as failed sign-ins do."""
        try:
            return self.codes.consume(purpose, subject, code, destination)
        except code_errors.CodeError as exc:
            if isinstance(exc, code_errors.CodeMismatch):
                self.throttle.failure(client_ip)
            raise CODE_ERRORS[type(exc)]() from None

    def guard_address(self, client_ip) -> None:
        if self.throttle.blocked(client_ip):
            raise errors.LimitExceededError()
