"""/metrics: Prometheus text with sign-ins by outcome and path, latencies, users by state."""

from __future__ import annotations

import requests

from tests.cognito.test_sign_in import error_of, sign_in


def sample(text: str, name: str, **labels) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
        if not labels and line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}{{{wanted}}}")


def test_metrics_count_sign_ins_by_path(cognito, live_service, legacy_user, kc_user, realm, database_url):
    url = live_service["url"] + "/metrics"
    before = requests.get(url, timeout=10).text
    native = kc_user(password="Native-Pass-1")
    kii = legacy_user()
    sign_in(cognito, native["username"], "Native-Pass-1")
    sign_in(cognito, kii["username"], kii["password"])
    error_of(lambda: sign_in(cognito, native["username"], "wrong"))
    response = requests.get(url, timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    after = response.text

    def grew(name: str, **labels) -> float:
        def value(text):
            try:
                return sample(text, name, **labels)
            except AssertionError:  # a labelled sample appears once first counted
                return 0.0
        return value(after) - value(before)

    assert grew("identity_sign_ins_total", outcome="success", path="native") == 1
    assert grew("identity_sign_ins_total", outcome="success", path="first_login") == 1
    assert grew("identity_sign_ins_total", outcome="NotAuthorizedException", path="api") == 1
    assert grew("identity_operation_seconds_count", operation="InitiateAuth") == 3
    # Nothing else happened: no lockout, no failed Admin API call.
    assert grew("identity_lockouts_total", kind="sign_in") == 0
    assert grew("identity_keycloak_admin_calls_total", outcome="error") == 0

    # Users by state are cached a minute per process: a new process's first scrape reads the store now.
    import sqlalchemy as sa

    from identity.db import db
    from identity.legacy.models import LegacyUser, MigrationState
    from tests.cognito.fixtures import free_port, live_app

    fresh = live_app(realm, database_url, free_port())
    text = fresh.test_client().get("/metrics").get_data(as_text=True)
    with fresh.app_context():
        migrated = db.session.execute(sa.select(sa.func.count()).select_from(LegacyUser)
                                      .where(LegacyUser.state == MigrationState.migrated)).scalar_one()
    assert migrated >= 1  # the Kii user above
    assert sample(text, "identity_users", state="migrated") == migrated


def test_dashboard_queries_only_metrics_the_service_exports():
    import json
    import re

    from tests.conftest import ROOT

    exported = set(re.findall(r'"(identity_[a-z_]+)"', (ROOT / "identity" / "metrics.py").read_text()))
    dashboard = json.loads((ROOT / "config" / "grafana" / "identity-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"\b(identity_[a-z_]+?)(?:_bucket|_count|_sum)?\b[\[{ )]", target["expr"] + " "):
                assert name in exported, (panel["title"], name)
