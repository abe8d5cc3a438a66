"""Liveness and readiness for load balancers and orchestrators."""

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from identity.db import db
from identity.keycloak import keycloak

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up and serving; depends on nothing else."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Keycloak and the database answer; 503 with the failing part named when not."""
    checks = {"database": _check_database(), "keycloak": keycloak.check_ready()}
    ready = all(result == "ok" for result in checks.values())
    return jsonify(status="ok" if ready else "unavailable", checks=checks), (200 if ready else 503)


def _check_database() -> str:
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # reason only: a URL could carry a password
        current_app.logger.warning("readiness: database unreachable", extra={"error": type(exc).__name__})
        return f"unreachable ({type(exc).__name__})"
