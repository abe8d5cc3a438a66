"""Keycloak refuses a user's password check while it still records that user's previous login (its
brute-force bookkeeping runs after the response; docs/sign-in.md). The service waits that out; a test
that calls Keycloak directly, or signs in at its login page twice in a row, must do the same, or it
fails on a loaded machine without a bug. A refusal is retried only when Keycloak's own LOGIN_ERROR
event says it was that (`user_temporarily_disabled`); any other refusal stands at once."""

from __future__ import annotations

import time

from identity.keycloak.oidc import OAuthError
from tests.conftest import TEST_REALM

DEADLINE_S = 15


def refused_as_busy(admin, user_id: str, since_ms: int) -> bool:
    """Was the user's latest login error, at or after `since_ms`, Keycloak being busy with the user?"""
    events = admin.connection.raw_get(f"admin/realms/{TEST_REALM}/events", user=user_id, type="LOGIN_ERROR",
                                      max=1).json()
    if not events or events[0].get("time", 0) < since_ms - 5 or events[0].get("error") != "user_temporarily_disabled":
        return False
    # The same error names a real lockout: that one stands.
    status = admin.connection.raw_get(f"admin/realms/{TEST_REALM}/attack-detection/brute-force/users/{user_id}")
    return not status.json().get("disabled")


def settled(call, admin, user_id: str):
    """`call()` (a grant at Keycloak's token endpoint), repeated while Keycloak refuses it as busy."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        since_ms = int(time.time() * 1000)
        try:
            return call()
        except OAuthError:
            if time.monotonic() > deadline or not refused_as_busy(admin, user_id, since_ms):
                raise
        time.sleep(0.2)


def settled_page(call, admin, user_id: str):
    """`call()` -> (response, ...) at Keycloak's login page, repeated while the form came back because
    Keycloak was busy with the user (a sign-in answers 302)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        since_ms = int(time.time() * 1000)
        result = call()
        if result[0].status_code == 302 or time.monotonic() > deadline \
                or not refused_as_busy(admin, user_id, since_ms):
            return result
        time.sleep(0.2)
