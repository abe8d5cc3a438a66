"""The importer's bulk write (identity.keycloak.writer): what it sends the provider, and a batch sent again
whole when another transaction wrote the same users meanwhile (a retried request still running), since the
batch is idempotent. End to end: tests/importer/test_bulk_users.py."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from identity.keycloak import writer as writer_module
from identity.keycloak.errors import KeycloakRefused
from identity.keycloak.writer import KeycloakWriter, bulk_entry

REP = {"id": "u-1", "username": "login-1", "email": "a@example.com", "emailVerified": True, "enabled": True,
       "createdTimestamp": 1700000000000,
       "attributes": {"kii_user_id": ["k1"], "migration_state": ["pending"],
                      "migration_state_changed_at": ["2026-01-01T00:00:00Z"], "phone_number": ["+8613800138000"],
                      "custom.deviceModel": ["BP-7"]}}


class Connection:
    def __init__(self, *statuses):
        self.statuses = list(statuses)
        self.sent = []
        self.timeout = 10

    def raw_post(self, path, data):
        self.sent.append((path, json.loads(data)))
        status = self.statuses.pop(0)
        body = {"results": [{"id": "u-1", "outcome": "created"}]}
        return SimpleNamespace(status_code=status, json=lambda: body)


def test_the_entry_keeps_the_read_only_attributes_apart():
    entry = bulk_entry(REP)
    assert entry["kii_user_id"] == "k1" and entry["migration_state"] == "pending"
    assert set(entry["attributes"]) == {"phone_number", "custom.deviceModel"}
    assert entry["createdTimestamp"] == 1700000000000 and "firstName" not in entry


def test_a_batch_another_transaction_met_is_sent_again(monkeypatch):
    monkeypatch.setattr(writer_module.time, "sleep", lambda s: None)
    connection = Connection(409, 200)
    answers = KeycloakWriter(SimpleNamespace(connection=connection), "china").write([REP])
    assert answers == {"u-1": ("created", None)}
    assert len(connection.sent) == 2 and connection.sent[0] == connection.sent[1]
    assert connection.timeout >= writer_module.BULK_TIMEOUT_S


def test_a_conflict_that_stays_is_an_error(monkeypatch):
    monkeypatch.setattr(writer_module.time, "sleep", lambda s: None)
    connection = Connection(*[409] * writer_module.BULK_ATTEMPTS)
    with pytest.raises(KeycloakRefused):
        KeycloakWriter(SimpleNamespace(connection=connection), "china").write([REP])
    assert len(connection.sent) == writer_module.BULK_ATTEMPTS
