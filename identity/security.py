"""Security headers on every response of the service.

`setdefault` throughout: a response that already says something (Keycloak's
login pages through the development proxy, with their own CSP and framing
rules; the JWKS with its public cache) keeps it.
"""

from __future__ import annotations

from flask.sessions import SessionInterface


class NoSessions(SessionInterface):
    """The service sets no cookies: it keeps no session of its own (Keycloak keeps the login's).

    Flask's default cookie session would also build its signer on every request, for nothing.
    A write to `flask.session` fails loudly instead of issuing a cookie.
    """

    def open_session(self, app, request):
        return self.make_null_session(app)

    def save_session(self, app, session, response) -> None:
        return None


def init_app(app) -> None:
    https = str(app.config["PUBLIC_BASE_URL"]).startswith("https://")
    app.session_interface = NoSessions()

    @app.after_request
    def headers(response):
        h = response.headers
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "no-referrer")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        if "Cache-Control" not in h:
            h["Cache-Control"] = "no-store"  # tokens, codes and user data are never cached
        if https:
            h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response
