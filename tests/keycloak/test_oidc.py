"""The service's calls to Keycloak's token endpoint (libcurl through pycurl): proxies, timeouts, threads, forks."""

from __future__ import annotations

import base64
import json
import multiprocessing
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from identity.keycloak.oidc import OIDC, KeycloakUnavailable, OAuthError, token_lifetime


def oidc_for(keycloak_url: str, realm_name: str, timeout: float = 10) -> OIDC:
    return OIDC(keycloak_url, realm_name, keycloak_url, timeout)


def test_grants_and_refusals(realm, keycloak_url, kc_user):
    user = kc_user(password="Token-Pass-1")
    oidc = oidc_for(keycloak_url, realm.realm)
    tokens = oidc.password_grant("mobile", None, user["username"], user["password"])
    assert tokens["token_type"] == "Bearer" and tokens["id_token"] and tokens["refresh_token"]
    refreshed = oidc.refresh_grant("mobile", None, tokens["refresh_token"])
    assert refreshed["access_token"] != tokens["access_token"]
    with pytest.raises(OAuthError) as refused:
        oidc.password_grant("mobile", None, user["username"], "wrong-password")
    assert refused.value.status == 400 and refused.value.error == "invalid_grant"
    with pytest.raises(OAuthError) as refused:
        oidc.refresh_grant("mobile", None, "not-a-refresh-token")
    assert refused.value.status == 400 and refused.value.error == "invalid_grant"


def _unsigned(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


def test_expires_in_is_the_lifetime_the_token_was_issued_with():
    # Keycloak counts the seconds left after issuing: 3599 when a second ticks in between.
    assert token_lifetime({"access_token": _unsigned({"iat": 1000, "exp": 4600}), "expires_in": 3599}) == 3600
    assert token_lifetime({"access_token": _unsigned({"iat": 1000, "exp": 1900}), "expires_in": 899}) == 900
    # Unreadable claims: Keycloak's own figure stands.
    for token in ("opaque", _unsigned({"iat": "1000", "exp": 4600}), _unsigned({"exp": 4600}),
                  _unsigned({"iat": 1000, "exp": 1000}), "a.!!!.c"):
        assert token_lifetime({"access_token": token, "expires_in": 3599}) == 3599


def test_every_grant_reports_the_configured_lifetime(realm, keycloak_url, kc_user):
    oidc = oidc_for(keycloak_url, realm.realm)
    for _ in range(5):
        # A user each: Keycloak refuses the same user's next login while it records the previous one.
        user = kc_user(password="Token-Pass-1")
        tokens = oidc.password_grant("mobile", None, user["username"], user["password"])
        assert tokens["expires_in"] == 3600
        assert oidc.refresh_grant("mobile", None, tokens["refresh_token"])["expires_in"] == 3600


def test_proxy_settings_in_the_environment_are_ignored(realm, keycloak_url, kc_user, monkeypatch):
    # A proxy from the environment would send passwords through it; here it would refuse the connection.
    user = kc_user(password="Token-Pass-1")  # before the proxy settings: the Admin API client follows them
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, dead)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert oidc_for(keycloak_url, realm.realm).password_grant("mobile", None, user["username"],
                                                              user["password"])["access_token"]


def test_silent_server_is_unavailable_within_the_timeout():
    # A listening socket nobody accepts from: the connection opens, no answer ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        oidc = oidc_for(f"http://127.0.0.1:{silent.getsockname()[1]}", "any", timeout=1)
        started = time.monotonic()
        with pytest.raises(KeycloakUnavailable) as unavailable:
            oidc.refresh_grant("mobile", None, "a-refresh-token-value")
        assert 0.9 <= time.monotonic() - started < 5
    assert "a-refresh-token-value" not in str(unavailable.value)
    assert str(unavailable.value) == "curl error 28"  # CURLE_OPERATION_TIMEDOUT


def test_refused_connection_is_unavailable():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(KeycloakUnavailable, match="curl error 7"):  # CURLE_COULDNT_CONNECT
        oidc_for(f"http://127.0.0.1:{port}", "any").password_grant("mobile", None, "someone", "a-password")


def test_threads_share_one_client_with_their_own_connections(realm, keycloak_url, kc_user):
    # One sign-in per user at a time: Keycloak itself refuses a user's concurrent password checks
    # while its brute-force bookkeeping runs (docs/sign-in.md); refreshes have no such limit.
    users = [kc_user(password=f"Thread-Pass-{i}") for i in range(8)]
    oidc = oidc_for(keycloak_url, realm.realm)

    def sign_in(user: dict) -> str:
        return oidc.password_grant("mobile", None, user["username"], user["password"])["refresh_token"]

    def refresh(token: str) -> str:
        return oidc.refresh_grant("mobile", None, token)["access_token"]

    with ThreadPoolExecutor(8) as pool:
        refresh_tokens = list(pool.map(sign_in, users))
        access_tokens = list(pool.map(refresh, refresh_tokens * 4))
    assert len(set(access_tokens)) == 32


def _child_sign_in(oidc: OIDC, username: str, password: str, results) -> None:
    try:
        results.put(bool(oidc.password_grant("mobile", None, username, password)["access_token"]))
    except Exception as exc:  # reported to the parent, which asserts
        results.put(type(exc).__name__)


def test_a_forked_process_gets_its_own_handle(realm, keycloak_url, kc_user):
    # gunicorn forks workers from the master: a handle (and its connections) must not cross a fork.
    # A user per sign-in: Keycloak refuses the same user's next login while it records the previous one.
    parent, child_user, after = (kc_user(password=f"Fork-Pass-{i}") for i in range(3))
    oidc = oidc_for(keycloak_url, realm.realm)
    assert oidc.password_grant("mobile", None, parent["username"], parent["password"])  # the parent's handle
    parent_handle = oidc.curl
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_child_sign_in, args=(oidc, child_user["username"], child_user["password"],
                                                         results))
    child.start()
    child.join(60)
    assert results.get(timeout=5) is True
    assert oidc.curl is parent_handle
    assert oidc.password_grant("mobile", None, after["username"], after["password"])["access_token"]
