"""keycloak_spi_bridge: a Kii user signs in at Keycloak's own login page with the old password."""

from __future__ import annotations

import requests

from identity.legacy.models import MigrationState
from tests.busy import settled_page
from tests.cognito.fixtures import store_row
from tests.cognito.test_hosted_ui import REDIRECT, pkce
from tests.cognito.test_sign_in import verify_like_cognito


def login_page(live_service, username: str, password: str):
    """authorize -> Keycloak's form -> the answer (302 with a code, or the form again)."""
    import html
    import re

    verifier, challenge = pkce()
    session = requests.Session()
    start = session.get(f"{live_service['url']}/oauth2/authorize", allow_redirects=False, timeout=10, params={
        "client_id": "mobile", "response_type": "code", "redirect_uri": REDIRECT, "scope": "openid",
        "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"})
    page = session.get(start.headers["Location"], timeout=10)
    for cookie in session.cookies:
        cookie.secure = False
    action = html.unescape(re.search(r'<form[^>]+id="kc-form-login"[^>]+action="([^"]+)"', page.text).group(1))
    return session.post(action, data={"username": username, "password": password, "credentialId": ""},
                        allow_redirects=False, timeout=15), verifier


def exchange(live_service, response, verifier) -> dict:
    from urllib.parse import parse_qs, urlsplit

    code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
    tokens = requests.post(f"{live_service['url']}/oauth2/token", timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": "mobile",
        "code_verifier": verifier})
    assert tokens.status_code == 200, tokens.text
    return tokens.json()


def test_pending_kii_user_signs_in_at_the_login_page(live_service, legacy_user, master_admin):
    user = legacy_user(password="Kii-Browser-1", email="bridge-user@example.com")
    response, verifier = login_page(live_service, user["username"], "Kii-Browser-1")
    assert response.status_code == 302, response.text[:300]
    claims = verify_like_cognito(exchange(live_service, response, verifier)["id_token"], live_service, "id")
    assert claims["custom:kii_user_id"] == user["kii_user_id"]
    row = store_row(live_service["app"], user["kii_user_id"])
    assert row.state == MigrationState.migrated and row.password_hash is None
    assert [c["type"] for c in master_admin.get_credentials(user["id"])] == ["password"]
    # By email this time; Keycloak holds the password, the bridge is not asked again.
    response, verifier = settled_page(lambda: login_page(live_service, "bridge-user@example.com", "Kii-Browser-1"),
                                      master_admin, user["id"])
    assert response.status_code == 302
    exchange(live_service, response, verifier)


def test_wrong_password_at_the_login_page(live_service, legacy_user):
    user = legacy_user(password="Kii-Browser-2")
    response, _ = login_page(live_service, user["username"], "wrong")
    assert response.status_code == 200 and "kc-form-login" in response.text  # the form again, with its error
    row = store_row(live_service["app"], user["kii_user_id"])
    assert row.state == MigrationState.pending and row.failed_attempts == 1


def test_bridge_refuses_without_the_secret(live_service):
    url = f"{live_service['url']}/bridge/v1/verify"
    assert requests.post(url, json={"username": "x", "password": "y"}, timeout=10).status_code == 403
    assert requests.post(url, json={"username": "x", "password": "y"}, timeout=10,
                         headers={"Authorization": "Bearer wrong"}).status_code == 403


def test_locked_out_and_disabled_users(live_service, legacy_user, master_admin):
    locked = legacy_user(password="Kii-Locked-1")
    for failures in range(1, 6):
        # Five wrong passwords judged by the bridge (a try Keycloak turned away as busy is repeated).
        response, _ = settled_page(lambda: login_page(live_service, locked["username"], "wrong"),
                                   master_admin, locked["id"])
        assert response.status_code == 200
        assert store_row(live_service["app"], locked["kii_user_id"]).failed_attempts == failures
    response, _ = settled_page(lambda: login_page(live_service, locked["username"], "Kii-Locked-1"),
                               master_admin, locked["id"])
    assert response.status_code == 200, "a locked-out user does not get in, even with the right password"
    assert store_row(live_service["app"], locked["kii_user_id"]).state == MigrationState.pending

    disabled = legacy_user(password="Kii-Disabled-1", disabled=True)
    response, _ = login_page(live_service, disabled["username"], "Kii-Disabled-1")
    assert response.status_code == 200
    assert store_row(live_service["app"], disabled["kii_user_id"]).state == MigrationState.pending


def test_bridge_down_fails_like_a_wrong_password_within_bounded_time(live_service, legacy_user, master_admin,
                                                                      realm):
    """The realm's flow pointed at a closed port for this test; the ordinary error, in seconds, nothing lost."""
    import time
    from dataclasses import replace

    from identity.keycloak.bootstrap import bootstrap
    from tests.cognito.fixtures import free_port
    from tests.conftest import TEST_REALM

    user = legacy_user(password="Kii-Down-1")
    bootstrap(master_admin, replace(realm, bridge_url=f"http://127.0.0.1:{free_port()}/bridge/v1"))
    try:
        started = time.monotonic()
        response, _ = login_page(live_service, user["username"], "Kii-Down-1")
        assert response.status_code == 200 and "kc-form-login" in response.text
        assert time.monotonic() - started < 10
        assert store_row(live_service["app"], user["kii_user_id"]).state == MigrationState.pending
    finally:
        bootstrap(master_admin, realm)
        master_admin.change_current_realm(TEST_REALM)
    response, verifier = settled_page(lambda: login_page(live_service, user["username"], "Kii-Down-1"),
                                      master_admin, user["id"])
    assert response.status_code == 302  # back up: the same password gets in


def verify(live_service, dev_env, body: dict) -> requests.Response:
    """The provider's call to the bridge, made by hand."""
    return requests.post(f"{live_service['url']}/bridge/v1/verify", json=body, timeout=15,
                         headers={"Authorization": f"Bearer {dev_env['IDENTITY_BRIDGE_SECRET']}"})


def cn_mobile() -> str:
    import secrets

    return f"+86139{secrets.randbelow(10 ** 8):08d}"


def test_the_bridge_finds_the_legacy_user_by_keycloak_id_not_by_name(live_service, dev_env, legacy_user, kc_user,
                                                                     master_admin):
    """An account an admin made without a password, named like a legacy user's email or phone, is not
    that legacy user: the legacy password does not let it in, and nothing of the legacy user moves."""
    import uuid

    email, phone = f"victim-{uuid.uuid4().hex[:8]}@example.com", cn_mobile()
    victim = legacy_user(password="Kii-Victim-1", email=email, phone=phone)
    for name in (email, phone):
        imposter = kc_user(username=name)
        answer = verify(live_service, dev_env, {"user_id": imposter["id"], "username": name,
                                                "password": "Kii-Victim-1"})
        assert (answer.status_code, answer.json()) == (404, {"valid": False, "reason": "not_a_legacy_user"})
        assert master_admin.get_credentials(imposter["id"]) == []
    row = store_row(live_service["app"], victim["kii_user_id"])
    assert row.state == MigrationState.pending and row.password_hash and row.failed_attempts == 0
    assert master_admin.get_credentials(victim["id"]) == []
    # The legacy user's own account, named by its id, is the one the password belongs to.
    answer = verify(live_service, dev_env, {"user_id": victim["id"], "password": "Kii-Victim-1"})
    assert (answer.status_code, answer.json()) == (200, {"valid": True})
    assert [c["type"] for c in master_admin.get_credentials(victim["id"])] == ["password"]


def test_the_bridge_refuses_a_request_without_a_user_id(live_service, dev_env, legacy_user):
    victim = legacy_user(password="Kii-Victim-3")
    for body in ({"username": victim["username"], "password": "Kii-Victim-3"},
                 {"user_id": 7, "password": "Kii-Victim-3"}, {"user_id": "", "password": "Kii-Victim-3"}):
        assert verify(live_service, dev_env, body).status_code == 400, body
    assert store_row(live_service["app"], victim["kii_user_id"]).state == MigrationState.pending


def test_an_account_named_like_a_legacy_users_phone_gets_nothing_at_the_login_page(live_service, legacy_user,
                                                                                   kc_user, master_admin):
    phone = cn_mobile()
    victim = legacy_user(password="Kii-Victim-2", phone=phone)
    imposter = kc_user(username=phone)
    response, _ = login_page(live_service, phone, "Kii-Victim-2")
    assert response.status_code == 200 and "kc-form-login" in response.text
    row = store_row(live_service["app"], victim["kii_user_id"])
    assert row.state == MigrationState.pending and row.password_hash
    assert master_admin.get_credentials(imposter["id"]) == [] and master_admin.get_credentials(victim["id"]) == []


def test_the_bridge_queues_behind_the_json_apis_lock_of_the_user(live_service, dev_env, legacy_user):
    """Named by id, the user still takes the lock the JSON API takes for them (its Keycloak username)."""
    import threading
    import time

    from identity.locks import sign_in_lock

    user = legacy_user(password="Kii-Queue-1")
    answers = []
    call = threading.Thread(target=lambda: answers.append(
        verify(live_service, dev_env, {"user_id": user["id"], "password": "Kii-Queue-1"})))
    with sign_in_lock(live_service["app"].extensions["cognito"].service.migration.engine, user["username"], 5):
        call.start()
        time.sleep(1.5)
        assert call.is_alive() and not answers, "the bridge did not wait for the user's lock"
    call.join(30)
    assert (answers[0].status_code, answers[0].json()) == (200, {"valid": True})


def test_a_lockout_earned_on_one_path_holds_on_the_other(live_service, dev_env, legacy_user, cognito):
    """The login page (through the bridge) and the JSON API judge a Kii password against one state:
    five wrong passwords on either path lock the user out on both."""
    import pytest

    def initiate(user, password):
        return cognito.initiate_auth(AuthFlow="USER_PASSWORD_AUTH", ClientId="mobile",
                                     AuthParameters={"USERNAME": user["username"], "PASSWORD": password})

    by_bridge = legacy_user(password="Kii-Both-Paths-1")
    answers = [verify(live_service, dev_env, {"user_id": by_bridge["id"], "password": "wrong"}).json()
               for _ in range(5)]
    assert answers == [{"valid": False, "reason": "wrong_password"}] * 4 + [{"valid": False, "reason": "locked"}]
    with pytest.raises(cognito.exceptions.NotAuthorizedException, match="Password attempts exceeded"):
        initiate(by_bridge, "Kii-Both-Paths-1")

    by_api = legacy_user(password="Kii-Both-Paths-2")
    for _ in range(5):
        with pytest.raises(cognito.exceptions.NotAuthorizedException):
            initiate(by_api, "wrong")
    answer = verify(live_service, dev_env, {"user_id": by_api["id"], "password": "Kii-Both-Paths-2"}).json()
    assert answer == {"valid": False, "reason": "locked"}
    assert store_row(live_service["app"], by_api["kii_user_id"]).state == MigrationState.pending


def test_password_set_takes_only_the_shared_secret_and_keeps_no_password(live_service, dev_env, kc_user):
    """Keycloak's srpVerifier policy hands the bridge a password it is storing: the bridge keeps a
    verifier of it (a secret like a hash), and takes such a call only with the shared secret."""
    import sqlalchemy as sa

    from identity.db import db
    from identity.signin.models import SrpVerifier
    from tests.used_secrets import remember

    url = live_service["url"] + "/bridge/v1/password-set"
    user = kc_user()
    body = {"user_id": user["id"], "username": user["username"], "password": "Pushed-Password-1"}
    remember("Pushed-Password-1")
    assert requests.post(url, json=body, timeout=10).status_code == 403
    assert requests.post(url, json=body, timeout=10, headers={"Authorization": "Bearer wrong"}).status_code == 403
    secret = {"Authorization": f"Bearer {dev_env['IDENTITY_BRIDGE_SECRET']}"}
    for bad in ({**body, "password": ""}, {**body, "user_id": 7}, {"user_id": user["id"]}, [body]):
        assert requests.post(url, json=bad, timeout=10, headers=secret).status_code == 400
    assert requests.post(url, json=body, timeout=10, headers=secret).status_code == 204
    with live_service["app"].app_context():
        row = db.session.execute(sa.select(SrpVerifier).where(SrpVerifier.keycloak_user_id == user["id"])).scalar_one()
        assert row.credential_id is None and row.username == user["username"]
        assert "Pushed-Password-1" not in (row.verifier + row.salt)
        remember(row.verifier)
