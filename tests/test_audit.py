"""The audit trail: one record per migration event, queryable with `identity audit`, without secrets."""

from __future__ import annotations

import json

from tests.cognito.test_sign_in import error_of, sign_in


def audit_lines(app, *args) -> list[dict]:
    result = app.test_cli_runner().invoke(args=["audit", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


def test_migration_lockout_and_deletion_are_audited(cognito, live_service, legacy_user):
    app = live_service["app"]
    user = legacy_user(password="Kii-Audit-1")
    for _ in range(5):
        error_of(lambda: sign_in(cognito, user["username"], "wrong-password"))
    events = audit_lines(app, "--user", user["kii_user_id"])
    assert [e["event"] for e in events] == ["locked_out"]
    assert events[0]["path"] == "api" and events[0]["client"] == "127.0.0.1"

    other = legacy_user(password="Kii-Audit-2")
    token = sign_in(cognito, other["username"], "Kii-Audit-2")["AuthenticationResult"]["AccessToken"]
    cognito.delete_user(AccessToken=token)
    events = audit_lines(app, "--user", other["kii_user_id"])
    assert [e["event"] for e in events] == ["migrated", "deleted"]
    assert events[0]["keycloak_user_id"] == other["id"]
    text = json.dumps(events)
    assert "Kii-Audit-2" not in text and "$sha256$" not in text and token not in text
    assert audit_lines(app, "--user", other["kii_user_id"], "--since", "2999-01-01T00:00:00") == []
