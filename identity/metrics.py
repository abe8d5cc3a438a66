"""Prometheus metrics at /metrics (prometheus-client), shared across gunicorn workers.

Under gunicorn, PROMETHEUS_MULTIPROC_DIR (set by config/gunicorn.conf.py) makes
every worker write its samples to files that /metrics aggregates. The count of
users by migration state comes from one indexed query, cached for a minute.
"""

from __future__ import annotations

import os
import time

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

bp = Blueprint("metrics", __name__)

SIGN_INS = Counter("identity_sign_ins_total", "Password sign-ins by outcome and path (native, "
                   "first_login, bridge)", ["outcome", "path"])
OPERATION_SECONDS = Histogram("identity_operation_seconds", "Latency of each Cognito operation",
                              ["operation"], buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
ADMIN_CALLS = Counter("identity_keycloak_admin_calls_total", "Keycloak Admin API calls by outcome", ["outcome"])
LOCKOUTS = Counter("identity_lockouts_total", "Accounts or addresses locked out after failed sign-ins", ["kind"])
CODES_SENT = Counter("identity_codes_sent_total", "One-time codes sent by email", ["purpose"])
CODE_DELIVERY_FAILURES = Counter("identity_code_delivery_failures_total", "One-time codes the mail server did not "
                                 "take (the code is withdrawn; the user asks again)", ["purpose"])
ADMISSION_REFUSALS = Counter("identity_admission_refusals_total", "Requests refused at saturation "
                             "(TooManyRequestsException / 503) because every slot stayed busy", ["kind"])
KEYCLOAK_BUSY_RETRIES = Counter("identity_keycloak_busy_retries_total", "Password checks repeated because Keycloak "
                                "was still recording the same user's previous login (brute-force bookkeeping)")
JWKS_FETCHES = Counter("identity_jwks_fetches_total", "Fetches of Keycloak's signing keys (JWKS) for verifying "
                       "access tokens and for the published jwks.json")
MIGRATION_TICKETS = Counter("identity_migration_tickets_total", "First-login token requests made with Keycloak's "
                            "migration ticket: used, or refused (the password was checked instead)", ["result"])


class MigrationStateCollector:
    """Users by migration state, from the (state, disabled) index, at most once a minute."""

    def __init__(self, app):
        self.app, self.cached, self.at = app, None, 0.0

    def collect(self):
        from identity.db import db
        from identity.legacy.store import migration_stats

        if self.cached is None or time.monotonic() - self.at > 60:
            try:
                with self.app.app_context():
                    self.cached, self.at = migration_stats(db.engine), time.monotonic()
            except Exception:  # the database down: no sample rather than a failed scrape
                return
        family = GaugeMetricFamily("identity_users", "Users in the legacy store by migration state", labels=["state"])
        for state, count in self.cached.items():
            family.add_metric([state], count)
        yield family


@bp.get("/metrics")
def metrics():
    from prometheus_client import REGISTRY

    state = current_app.extensions["metrics"]
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    output = generate_latest(registry) + generate_latest(state.registry)
    return Response(output, content_type=CONTENT_TYPE_LATEST)


class _State:
    def __init__(self, app):
        self.registry = CollectorRegistry()
        self.registry.register(MigrationStateCollector(app))


def init_app(app) -> None:
    app.extensions["metrics"] = _State(app)
    app.register_blueprint(bp)
ADMIN_REQUESTS = Counter("identity_admin_requests_total", "SigV4-signed admin operations by operation and "
                         "outcome (ok, or Cognito's error name: a refused signature, key or grant)",
                         ["operation", "outcome"])
