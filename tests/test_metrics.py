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


def test_metrics_count_sign_ins_by_path(cognito, live_service, legacy_user, kc_user):
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

    def grew(**labels):
        try:
            old = sample(before, "identity_sign_ins_total", **labels)
        except AssertionError:
            old = 0.0
        return sample(after, "identity_sign_ins_total", **labels) - old

    assert grew(outcome="success", path="native") >= 1
    assert grew(outcome="success", path="first_login") >= 1
    assert grew(outcome="NotAuthorizedException", path="api") >= 1
    assert sample(after, "identity_operation_seconds_count", operation="InitiateAuth") >= 3
    assert sample(after, "identity_users", state="migrated") >= 0  # cached for a minute: present, maybe stale
    assert "identity_keycloak_admin_calls_total" in after or "identity_lockouts_total" in after


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
