"""Keycloak's browser paths served from the service's origin, for local development only.

In production nginx puts the login pages and the service under one public
origin (config/nginx); `make run` turns this blueprint on
(`IDENTITY_KEYCLOAK_PROXY`, off by default) so the login page, its cookies and
the tokens' issuer name the service's origin there too. It lets through what
nginx's public server lets through, no more: the app realm's login page,
logout page, `login-actions` and the theme resources. The path is judged as
the client sent it: a dot segment, an empty segment, any percent-encoding or
a backslash is refused, so nothing in the path can be read one way here and
another way by Keycloak.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, request, stream_with_context

from identity.keycloak.oidc import KeycloakUnavailable, browser_path_allowed

bp = Blueprint("keycloak_proxy", __name__)
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "host", "content-length"}


@bp.route("/realms/<path:rest>", methods=["GET", "POST"])
@bp.route("/resources/<path:rest>", methods=["GET"])
def proxy(rest):
    # The raw request target (werkzeug and gunicorn both keep it): PATH_INFO is already decoded.
    raw_path = request.environ.get("RAW_URI", "").split("?", 1)[0]
    if not browser_path_allowed(current_app.config["KEYCLOAK_REALM"], raw_path):
        abort(404)
    oidc = current_app.extensions["cognito"].service.oidc
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    try:
        upstream = oidc.forward(request.method, raw_path, params=request.query_string.decode(),
                                data=request.get_data(), headers=headers, allow_redirects=False, stream=True,
                                client_address=request.remote_addr)
    except KeycloakUnavailable:
        return Response("Keycloak is unavailable", status=502)
    response_headers = [(k, v) for k, v in upstream.raw.headers.items() if k.lower() not in HOP_BY_HOP]
    return Response(stream_with_context(upstream.raw.stream(64 * 1024, decode_content=False)),
                    status=upstream.status_code, headers=response_headers)
