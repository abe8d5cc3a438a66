"""Cognito's hosted-UI paths and the issuer's well-known documents.

Keycloak is the authority (sessions, revocation, the login page); these
endpoints translate Cognito's paths to Keycloak's, always with the public
base URL (X-Forwarded-* from it), so tokens name Cognito's issuer shape,
``{PUBLIC_BASE_URL}/{IDENTITY_USER_POOL_ID}``, and ``{iss}/.well-known/*``
answers here.
"""

from __future__ import annotations

import functools
import time

from flask import Blueprint, Response, abort, current_app, jsonify, redirect, request
from werkzeug.exceptions import RequestEntityTooLarge

from identity.admission import Overloaded
from identity.cognito.clients import OAuthClientError
from identity.cognito.errors import CognitoError
from identity.cognito.sessions import user_attributes
from identity.keycloak import keycloak
from identity.keycloak.oidc import KeycloakUnavailable, OAuthError

bp = Blueprint("oauth", __name__)
_cache: dict[str, tuple[float, dict]] = {}
CACHE_SECONDS = 300


def _service():
    return current_app.extensions["cognito"].service


def admitted(view):
    """The calls that wait on Keycloak share the process's slots with the Cognito API."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        with current_app.extensions["admission"].admit("oauth"):
            return view(*args, **kwargs)
    return wrapper


@bp.errorhandler(Overloaded)
def _overloaded(exc):
    response = jsonify(error="temporarily_unavailable")
    response.headers["Retry-After"] = "1"
    return response, 503


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc):
    return jsonify(error="invalid_request", error_description="request body too large"), 413


def _cached(name: str, fetch) -> dict:
    entry = _cache.get(name)
    if entry is None or time.monotonic() - entry[0] > CACHE_SECONDS:
        entry = _cache[name] = (time.monotonic(), fetch())
    return entry[1]


def _pool_or_404(pool: str) -> None:
    if pool != current_app.config["USER_POOL_ID"]:
        abort(404)


@bp.get("/<pool>/.well-known/jwks.json")
def jwks(pool):
    _pool_or_404(pool)
    try:
        keys = _cached(f"jwks:{_service().oidc.issuer}", _service().tokens.jwks)
    except KeycloakUnavailable:
        return jsonify(error="temporarily_unavailable"), 503
    response = jsonify(keys)
    response.cache_control.public, response.cache_control.max_age = True, 300
    return response


@bp.get("/<pool>/.well-known/openid-configuration")
def openid_configuration(pool):
    _pool_or_404(pool)
    service = _service()
    try:
        document = dict(_cached(f"discovery:{service.oidc.issuer}", service.oidc.discovery))
    except KeycloakUnavailable:
        return jsonify(error="temporarily_unavailable"), 503
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    document.update(issuer=service.oidc.issuer, jwks_uri=f"{service.oidc.issuer}/.well-known/jwks.json",
                    authorization_endpoint=f"{base}/oauth2/authorize", token_endpoint=f"{base}/oauth2/token",
                    userinfo_endpoint=f"{base}/oauth2/userInfo", revocation_endpoint=f"{base}/oauth2/revoke",
                    end_session_endpoint=f"{base}/logout")
    return jsonify(document)


@bp.get("/oauth2/authorize")
def authorize():
    """To Keycloak's login page, with the app's parameters (PKCE included) unchanged."""
    if request.args.get("client_id") not in _service().clients:
        return jsonify(error="invalid_request", error_description="unknown client_id"), 400
    return redirect(keycloak.authorize_url(list(request.args.items(multi=True))), 302)


@bp.errorhandler(OAuthClientError)
def _client_refused(exc: OAuthClientError):
    response = jsonify(error=exc.error, error_description=exc.description)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="oauth2"'  # RFC 6749 5.2
    response.headers["Cache-Control"], response.headers["Pragma"] = "no-store", "no-cache"
    return response, exc.status


@bp.post("/oauth2/token")
@admitted
def token():
    form = request.form.to_dict()
    service = _service()
    client_id, secret = service.clients.authenticate(form, request.headers.get("Authorization"))
    for name in ("client_id", "client_secret"):  # Keycloak gets the authenticated client, added by the call
        form.pop(name, None)
    if form.get("grant_type") not in ("authorization_code", "refresh_token"):
        return jsonify(error="unsupported_grant_type"), 400
    try:
        tokens = service.oidc.code_grant(form, client_id, secret)
    except OAuthError as exc:
        return jsonify(error=exc.error), 400
    except KeycloakUnavailable:
        return jsonify(error="temporarily_unavailable"), 503
    body = {k: tokens[k] for k in ("access_token", "id_token", "refresh_token", "expires_in") if k in tokens}
    body["token_type"] = "Bearer"
    response = jsonify(body)
    response.headers["Cache-Control"], response.headers["Pragma"] = "no-store", "no-cache"
    return response


@bp.get("/oauth2/userInfo")
@admitted
def userinfo():
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        return jsonify(error="invalid_token"), 401
    service = _service()
    try:
        # Cognito's verifier and session check (Keycloak's userinfo refuses Cognito's issuer), then
        # the user's attributes as GetUser reads them, in Cognito's userInfo shape.
        claims = service.tokens.verify(header[7:].strip())
        user = service.keycloak.get_user(claims["sub"])
    except CognitoError:
        return jsonify(error="invalid_token"), 401
    except KeycloakUnavailable:
        return jsonify(error="temporarily_unavailable"), 503
    return jsonify({"username": user["username"], **{a["Name"]: a["Value"] for a in user_attributes(user)}})


@bp.post("/oauth2/revoke")
@admitted
def revoke():
    """200 with an empty body, whatever the token (as Cognito answers), once the client is authenticated."""
    service = _service()
    client_id, secret = service.clients.authenticate(request.form, request.headers.get("Authorization"))
    try:
        service.oidc.revoke(client_id, secret, request.form.get("token", ""))
    except OAuthError:
        pass
    except KeycloakUnavailable:
        return jsonify(error="temporarily_unavailable"), 503
    return Response(status=200)


@bp.get("/logout")
def logout():
    client_id = request.args.get("client_id")
    if client_id not in _service().clients:
        return jsonify(error="invalid_request", error_description="unknown client_id"), 400
    params = {"client_id": client_id}
    if request.args.get("logout_uri"):
        params["post_logout_redirect_uri"] = request.args["logout_uri"]
    return redirect(keycloak.logout_url(params), 302)
