"""A first-login migration racing a password set at Keycloak itself (an admin's reset through the Admin API;
the login page's "forgot password" takes the same path in Keycloak): the user ends with exactly one password
credential, and it is the one chosen at Keycloak. The legacy password never replaces it: a migration that
comes second is refused (409), one that comes first is replaced, as any reset replaces a password."""

from __future__ import annotations

import threading

import pytest

from identity.keycloak.oidc import OIDC, OAuthError
from identity.keycloak.passwords import migrate_password
from tests.busy import settled
from tests.conftest import TEST_REALM
from tests.used_secrets import remember

ROUNDS = 40
LEGACY = "Kii-Race-Legacy-1"
CHOSEN = "Chosen-At-Keycloak-Race-1"


def race(first, second) -> tuple[object, object]:
    """Both calls released together; their results (an exception counts as one)."""
    start = threading.Barrier(2)
    results: list[object] = [None, None]

    def run(index, call):
        start.wait()
        try:
            results[index] = call()
        except Exception as exc:  # reported below, with the round
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results[0], results[1]


@pytest.fixture
def reset_admin(master_admin, bootstrap_settings, dev_env):
    """A second master-realm session for the reset thread (one client per thread)."""
    from identity.keycloak.bootstrap import connect

    admin = connect(bootstrap_settings, dev_env["KC_BOOTSTRAP_ADMIN_USERNAME"], dev_env["KC_BOOTSTRAP_ADMIN_PASSWORD"])
    admin.change_current_realm(TEST_REALM)
    return admin


def test_a_migration_racing_a_keycloak_reset_leaves_one_password(app_ctx, realm, keycloak_url, kc_user,
                                                                 master_admin, reset_admin):
    from identity.keycloak import keycloak

    remember(LEGACY, CHOSEN)  # the suite's logs are scanned for them
    oidc = OIDC(keycloak_url, realm.realm, keycloak_url, 10)
    service_admin = keycloak.admin  # the service's client, taken here: the thread has no app context
    outcomes = []
    for round_ in range(ROUNDS):
        user = kc_user()
        moved, reset = race(lambda: migrate_password(service_admin, realm.realm, user["id"], LEGACY),
                            lambda: reset_admin.set_user_password(user["id"], CHOSEN, temporary=False))
        assert not isinstance(reset, Exception), (round_, reset)
        assert moved in ((True, None), (False, None)), (round_, moved)
        outcomes.append(moved[0])
        master_admin.change_current_realm(TEST_REALM)
        passwords = [c for c in master_admin.get_credentials(user["id"]) if c["type"] == "password"]
        assert len(passwords) == 1, (round_, moved, passwords)
        # The password chosen at Keycloak is the one that holds, whoever came first.
        assert settled(lambda: oidc.password_grant("mobile", None, user["username"], CHOSEN),
                       master_admin, user["id"])["access_token"], round_
        with pytest.raises(OAuthError):
            settled(lambda: oidc.password_grant("mobile", None, user["username"], LEGACY), master_admin, user["id"])
    print(f"migrations that stored the legacy password first: {outcomes.count(True)} of {ROUNDS}")
