"""SRP sign-in (Cognito's USER_SRP_AUTH, then PASSWORD_VERIFIER): the password never reaches the service.

InitiateAuth gives the challenge: the user's salt and B, and a SECRET_BLOCK carrying this side's
half of the exchange (identity.srp.blocks), so any process can take the answer. The answer is
judged under the user's sign-in lock; a right one gets tokens from Keycloak with a single-use
ticket the provider mints for the service, a wrong one counts in Keycloak's brute-force detection
and against the client's address, as any wrong password does.

A name with no usable verifier (unknown, a Kii user not migrated yet, a password set at Keycloak's
pages since the last one the service saw) gets a challenge of the same shape, from a stand-in
salt and user id that stay the same for the name, and its answer is refused as a wrong password:
the app falls back to USER_PASSWORD_AUTH (docs/sign-in.md).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Protocol

from identity import srp
from identity.keycloak.errors import KeycloakUnavailable
from identity.legacy.identifiers import normalise_identifiers
from identity.signin.outcomes import Result, SignInOutcome
from identity.signin.service import SignIn
from identity.signin.verifiers import Verifiers

log = logging.getLogger(__name__)


class SrpKeycloak(Protocol):
    """What an SRP sign-in asks of Keycloak (identity.keycloak.gateway.KeycloakGateway answers)."""

    def find_user(self, *, username: str | None = None, email: str | None = None) -> dict | None: ...

    def password_credential(self, user_id: str) -> dict | None: ...

    def sign_in_ticket(self, user_id: str, client_id: str) -> str: ...

    def record_failed_login(self, user_id: str) -> None: ...


@dataclass(frozen=True)
class Challenge:
    parameters: dict = field(repr=False)   # SALT, SRP_B, SECRET_BLOCK, USER_ID_FOR_SRP, USERNAME


def aware_now() -> datetime:
    return datetime.now(timezone.utc)


class SrpSignIn:
    def __init__(self, sign_in: SignIn, verifiers: Verifiers, keycloak: SrpKeycloak, blocks: srp.SecretBlocks,
                 stand_in_key: bytes, tolerance: timedelta = timedelta(minutes=5),
                 challenge_ttl: timedelta = timedelta(minutes=3), now: Callable[[], datetime] = aware_now):
        self.sign_in, self.verifiers, self.keycloak, self.blocks = sign_in, verifiers, keycloak, blocks
        self.store, self.throttle = sign_in.store, sign_in.throttle
        self._stand_in_key = stand_in_key
        self.tolerance, self.challenge_ttl, self.now = tolerance, challenge_ttl, now

    # --- InitiateAuth --------------------------------------------------------------------------------

    def challenge(self, client_id: str, username: str, srp_a: int, client_ip: str | None) -> Challenge | SignInOutcome:
        if self.throttle.blocked(client_ip):
            return SignInOutcome(Result.THROTTLED)
        user = self._user(username)
        row = self._usable_verifier(user["id"]) if user else None
        if row is None:
            user_id, salt = self._stand_in(username)
            session = srp.ServerSession.start(srp.make_verifier(self.verifiers.pool, user_id, secrets.token_hex())[1])
        else:
            user_id, salt = user["id"], row["salt"]
            session = srp.ServerSession.start(row["verifier"])
        sealed = self.blocks.seal(session.b, srp_a, user_id, client_id, self.now(), self.challenge_ttl)
        return Challenge({"SALT": salt, "SRP_B": session.srp_b_hex, "SECRET_BLOCK": sealed.text,
                          "USER_ID_FOR_SRP": user_id, "USERNAME": user_id})

    def _user(self, username: str) -> dict | None:
        """The Keycloak user a typed name is: a Kii user by loginName, email or phone, else Keycloak's."""
        row = self.store.find(**normalise_identifiers(username))
        if row is not None and row["keycloak_user_id"]:
            return {"id": row["keycloak_user_id"]}
        text = username.strip()
        return self.keycloak.find_user(email=text) if "@" in text else self.keycloak.find_user(username=text)

    def _usable_verifier(self, user_id: str):
        """The user's verifier if it is of the password Keycloak holds now: none yet, or one made before
        a password set elsewhere since, is not used."""
        row = self.verifiers.get(user_id)
        return self.verifiers.usable(row, self.keycloak.password_credential(user_id)) if row else None

    def _stand_in(self, username: str) -> tuple[str, str]:
        """A user id and salt for a name without a verifier: the same for the name every time."""
        digest = hmac.new(self._stand_in_key, b"srp stand-in:" + normalise_identifiers(username)["username"].encode(),
                          hashlib.sha256).digest()
        # The salt in the form a real one has (identity.srp.make_verifier): its length tells nothing.
        return str(uuid.UUID(bytes=digest[:16], version=4)), srp.pad_hex(int.from_bytes(digest[16:32], "big"))

    # --- RespondToAuthChallenge (PASSWORD_VERIFIER) --------------------------------------------------

    def answer(self, client_id: str, secret: str | None, user_id_for_srp: str, secret_block: str, signature: str,
               timestamp: str, client_ip: str | None) -> SignInOutcome:
        started = time.monotonic()
        outcome = self._answer(client_id, secret, user_id_for_srp, secret_block, signature, timestamp, client_ip)
        return self.sign_in.floored(started, outcome)

    def _answer(self, client_id, secret, user_id_for_srp, secret_block, signature, timestamp, client_ip):
        if self.throttle.blocked(client_ip):
            return SignInOutcome(Result.THROTTLED)
        now = self.now()
        try:
            opened = self.blocks.open(secret_block, user_id_for_srp, client_id, now)
            srp.check_timestamp(timestamp, now, self.tolerance)
        except srp.SrpError as exc:
            log.info("srp: answer refused", extra={"reason": type(exc).__name__})
            return self._refused(client_ip)
        if not self.verifiers.spend(opened.block_id, opened.expires_at):
            log.warning("srp: a challenge answered twice")
            return self._refused(client_ip)
        row = self.verifiers.get(user_id_for_srp)
        if row is None:
            return self._refused(client_ip)
        claim = (secret_block, signature, timestamp)
        return self.sign_in.locked(row["username"], lambda: self._judge(client_id, secret, row, opened, claim,
                                                                         client_ip))

    def _judge(self, client_id, secret, row, opened, claim, client_ip) -> SignInOutcome:
        user_id = row["keycloak_user_id"]
        secret_block, signature, timestamp = claim
        try:
            key = srp.ServerSession(row["verifier"], opened.b).key(opened.srp_a)
            srp.verify_claim(self.verifiers.pool, user_id, secret_block, timestamp, signature, key)
        except srp.SrpError:
            try:
                self.keycloak.record_failed_login(user_id)
            except KeycloakUnavailable:
                return SignInOutcome(Result.UNAVAILABLE)
            return self._refused(client_ip)
        try:
            ticket = self.keycloak.sign_in_ticket(user_id, client_id)
        except KeycloakUnavailable:
            return SignInOutcome(Result.UNAVAILABLE)
        return self.sign_in.grant_with_ticket(client_id, secret, row["username"], user_id, ticket, client_ip)

    def _refused(self, client_ip) -> SignInOutcome:
        self.throttle.failure(client_ip)
        return SignInOutcome(Result.WRONG_PASSWORD)
