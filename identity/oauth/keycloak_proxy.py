"""Keycloak's browser paths (`/realms/...`, `/resources/...`) served from the service's origin.

In production nginx puts Keycloak and the service under one public origin
(config/nginx); this blueprint does the same for development and tests
(`IDENTITY_KEYCLOAK_PROXY`), so the login page, its cookies and the tokens'
issuer all name the public base URL there too. Requests go to Keycloak with
X-Forwarded-* headers, so Keycloak builds every URL on the public origin.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request, stream_with_context

from identity.keycloak.oidc import KeycloakUnavailable

bp = Blueprint("keycloak_proxy", __name__)
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "host", "content-length"}


@bp.route("/realms/<path:rest>", methods=["GET", "POST"])
@bp.route("/resources/<path:rest>", methods=["GET"])
def proxy(rest):
    service = current_app.extensions["cognito"].service
    url = current_app.config["KEYCLOAK_URL"] + request.path
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    headers.pop("X-Forwarded-For", None)
    try:
        upstream = service.oidc._call(request.method, url, params=request.query_string.decode(),
                                      data=request.get_data(), headers=headers, allow_redirects=False, stream=True)
    except KeycloakUnavailable:
        return Response("Keycloak is unavailable", status=502)
    response_headers = [(k, v) for k, v in upstream.raw.headers.items() if k.lower() not in HOP_BY_HOP]
    return Response(stream_with_context(upstream.raw.stream(64 * 1024, decode_content=False)),
                    status=upstream.status_code, headers=response_headers)
