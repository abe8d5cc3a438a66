"""Security headers on every response; Keycloak's own pages keep their own rules."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import TEST_REALM

SERVICE_CSP = "default-src 'none'; frame-ancestors 'none'"
KEYCLOAK_CSP = "frame-src 'self'; frame-ancestors 'self'; object-src 'none';"  # Keycloak's default for a realm


@pytest.mark.parametrize("method, path", [("GET", "/healthz"), ("POST", "/"), ("GET", "/metrics"),
                                          ("GET", "/oauth2/userInfo"), ("POST", "/bridge/v1/verify")])
def test_headers_everywhere(live_service, method, path):
    response = requests.request(method, live_service["url"] + path, timeout=10)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Content-Security-Policy"] == SERVICE_CSP
    assert response.headers["Cache-Control"] == "no-store"


def test_jwks_stays_cacheable_and_login_page_keeps_keycloaks_policy(live_service):
    jwks = requests.get(live_service["issuer"] + "/.well-known/jwks.json", timeout=10)
    assert "max-age=300" in jwks.headers["Cache-Control"]
    # The login page (through the development proxy) keeps Keycloak's own rules: it frames itself.
    realm_url = f"{live_service['url']}/realms/{TEST_REALM}"   # Keycloak's paths (the issuer is Cognito's)
    page = requests.get(realm_url + "/protocol/openid-connect/auth", timeout=10, params={
        "client_id": "mobile", "response_type": "code", "redirect_uri": "http://127.0.0.1:8000/oauth2/idpresponse",
        "scope": "openid", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256"})
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"] == KEYCLOAK_CSP
    assert page.headers["X-Frame-Options"] == "SAMEORIGIN"
    # The account console is not among the proxy's paths: the service's own 404, with its own policy.
    account = requests.get(realm_url + "/account", timeout=10)
    assert account.status_code == 404
    assert account.headers["Content-Security-Policy"] == SERVICE_CSP
    assert account.headers["X-Frame-Options"] == "DENY"


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
