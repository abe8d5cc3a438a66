"""Security headers on every response; Keycloak's own pages keep their own rules."""

from __future__ import annotations

import pytest
import requests


@pytest.mark.parametrize("method, path", [("GET", "/healthz"), ("POST", "/"), ("GET", "/metrics"),
                                          ("GET", "/oauth2/userInfo"), ("POST", "/bridge/v1/verify")])
def test_headers_everywhere(live_service, method, path):
    response = requests.request(method, live_service["url"] + path, timeout=10)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


def test_jwks_stays_cacheable_and_login_page_keeps_keycloaks_policy(live_service):
    jwks = requests.get(live_service["issuer"] + "/.well-known/jwks.json", timeout=10)
    assert "max-age=300" in jwks.headers["Cache-Control"]
    page = requests.get(live_service["issuer"] + "/account", timeout=10)
    assert "default-src 'none'" not in page.headers.get("Content-Security-Policy", "")


@pytest.mark.parametrize("method, path", [("GET", "/healthz"), ("POST", "/"), ("GET", "/oauth2/userInfo"),
                                          ("GET", "/oauth2/authorize")])
def test_no_cookie_is_ever_set(live_service, method, path):
    response = requests.request(method, live_service["url"] + path, timeout=10, allow_redirects=False)
    assert "Set-Cookie" not in response.headers


def test_writing_a_session_fails_instead_of_issuing_a_cookie(app):
    import flask

    with app.test_request_context("/"):
        app.preprocess_request()
        with pytest.raises(RuntimeError):
            flask.session["user"] = "x"
