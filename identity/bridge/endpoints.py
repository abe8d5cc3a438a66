"""`POST /bridge/v1/verify`: Keycloak's login page asks whether a legacy password is right.

Called by the provider in keycloak_spi_bridge (LegacyBridgeAuthenticator) when a
user without a Keycloak password types one, naming that Keycloak user by id: the
legacy user is the one that account was imported as, never another whose email or
phone the account's username happens to be. It runs the very same first-login
migration as the JSON API (identity.legacy.migration): on a right password the
service gives Keycloak the password through the Admin API, marks the user
migrated and deletes the legacy hash, then answers ``{"valid": true}``; the
login then completes in Keycloak, which holds the password from now on.

Reachable only with the shared secret (``Authorization: Bearer``,
IDENTITY_BRIDGE_SECRET on both sides); a wrong one is refused and logged.
"""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, current_app, jsonify, request

from identity.keycloak.oidc import KeycloakUnavailable
from identity.legacy.migration import Outcome
from identity.metrics import LOCKOUTS, SIGN_INS

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
    service = current_app.extensions["cognito"].service
    migration = service.migration
    from identity.locks import LockTimeout, sign_in_lock

    row = migration.for_keycloak_user(body["user_id"])
    if row is None:
        return jsonify(valid=False, reason="not_a_legacy_user"), 404
    try:
        # The same per-user lock as the JSON API, named as it names it (the row's Keycloak username):
        # one implementation, one queue.
        with sign_in_lock(migration.engine, row["username"] or row["email"], service.lock_timeout_s):
            outcome = migration.attempt(migration.get(row["kii_user_id"]), body["password"], path="bridge",
                                        client=request.remote_addr).outcome
    except (KeycloakUnavailable, LockTimeout):
        return jsonify(error="temporarily_unavailable"), 503
    log.info("bridge: legacy check", extra={"kii_user_id": row["kii_user_id"], "outcome": outcome.value,
                                            "path": "bridge"})
    SIGN_INS.labels("success" if outcome is Outcome.MIGRATED else outcome.value,
                    "bridge").inc()
    if outcome is Outcome.LOCKED:
        LOCKOUTS.labels("bridge").inc()
    if outcome is Outcome.MIGRATED:
        return jsonify(valid=True)
    # ALREADY_MIGRATED says nothing about this password: Keycloak holds one now and must judge it
    # itself (the provider falls back to Keycloak's own check on any answer but valid).
    return jsonify(valid=False, reason=outcome.value)
