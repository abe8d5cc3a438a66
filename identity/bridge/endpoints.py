"""`POST /bridge/v1/verify`: Keycloak's login page asks whether a legacy password is right.

Called by the provider in keycloak_spi_bridge (LegacyBridgeAuthenticator) when a
user without a Keycloak password types one, naming that Keycloak user by id: the
legacy user is the one that account was imported as, never another whose email or
phone the account's username happens to be. It is the JSON API's sign-in use
case (identity.signin.service.SignIn.check_legacy: the same lock, the same
first-login step): on a right password the service gives Keycloak the password
through the project's provider endpoint, marks the user migrated and deletes
the legacy hash, then answers ``{"valid": true}``; the login then completes in
Keycloak, which holds the password from now on.

Reachable only with the shared secret (``Authorization: Bearer``,
IDENTITY_BRIDGE_SECRET on both sides); a wrong one is refused and logged.
"""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, current_app, jsonify, request

from identity.metrics import LOCKOUTS, SIGN_INS
from identity.signin.outcomes import Result

log = logging.getLogger(__name__)
bp = Blueprint("bridge", __name__, url_prefix="/bridge/v1")


def _authorised() -> bool:
    secret = str(current_app.config.get("BRIDGE_SECRET") or "")
    header = request.headers.get("Authorization", "")
    given = header[7:] if header.startswith("Bearer ") else ""
    return bool(secret) and hmac.compare_digest(given.encode(), secret.encode())


@bp.post("/verify")
def verify():
    if not _authorised():
        log.warning("bridge: refused a request without the shared secret", extra={"client": request.remote_addr})
        return jsonify(error="forbidden"), 403
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("user_id"), str) or \
            not 0 < len(body["user_id"]) <= 64 or \
            not isinstance(body.get("password"), str):  # usable or not: migration.attempt asks the one rule
        return jsonify(error="invalid_request"), 400
    outcome = current_app.extensions["cognito"].service.sign_in.check_legacy(
        body["user_id"], body["password"], client_ip=request.remote_addr)
    return answer(outcome.result, body["user_id"])


@bp.post("/password-set")
def password_set():
    """Keycloak is storing a new password for a user (its provider's srpVerifier policy tells the
    bridge as it validates it): the service keeps the user's SRP verifier. Never the password itself."""
    if not _authorised():
        log.warning("bridge: refused a request without the shared secret", extra={"client": request.remote_addr})
        return jsonify(error="forbidden"), 403
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not all(isinstance(body.get(k), str) and 0 < len(body[k]) <= limit
                                             for k, limit in (("user_id", 64), ("username", 255), ("password", 4096))):
        return jsonify(error="invalid_request"), 400
    current_app.extensions["cognito"].service.verifiers.pushed(body["user_id"], body["username"], body["password"])
    log.info("bridge: SRP verifier kept for a password Keycloak was given",
             extra={"keycloak_user_id": body["user_id"], "path": "bridge"})
    return "", 204


def answer(result: Result, keycloak_user_id: str):
    """The provider's answer for the use case's result."""
    if result is Result.NOT_A_LEGACY_USER:
        return jsonify(valid=False, reason=result.value), 404
    if result in (Result.BUSY, Result.UNAVAILABLE):
        return jsonify(error="temporarily_unavailable"), 503
    log.info("bridge: legacy check", extra={"keycloak_user_id": keycloak_user_id, "outcome": result.value,
                                            "path": "bridge"})
    SIGN_INS.labels("success" if result is Result.MIGRATED else result.value, "bridge").inc()
    if result is Result.LOCKED:
        LOCKOUTS.labels("bridge").inc()
    if result is Result.MIGRATED:
        return jsonify(valid=True)
    # KEYCLOAK_JUDGES ("already_migrated") says nothing about this password: Keycloak holds one now and
    # must judge it itself (the provider falls back to Keycloak's own check on any answer but valid).
    return jsonify(valid=False, reason=result.value)
