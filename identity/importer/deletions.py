"""`--deleted`: users deleted on Kii are disabled in Keycloak and lose their legacy hash, for good.

The audit trail's `deleted` event (path `import`) is what tells later deliveries that the user is
gone (see facts.deleted_users). `decide` is pure: each deletion line's outcome, decided once.
"""

from __future__ import annotations

from typing import Callable

from identity import audit
from identity.importer import reader
from identity.importer.facts import deleted_users
from identity.importer.ledger import Ledger
from identity.importer.plan import record
from identity.importer.profile import keycloak_id
from identity.keycloak.writer import KeycloakWriter
from identity.legacy.models import MigrationState, utcnow
from identity.legacy.store import LegacyStore


def decide(run_id: str, realm: str, lines: list[reader.Line], stored: dict[str, dict], deleted: set[str],
           clock: Callable = utcnow) -> tuple[list[dict], list[dict]]:
    """(ledger records, users to delete) for these deletion lines, in file order."""
    stored, deleted = dict(stored), set(deleted)
    records, changes = [], []
    for line in lines:
        if line.reason or not line.record:
            records.append(record(run_id, "deleted", line.line_no, "failed", None, line.reason or "missing_user_id"))
            continue
        row = stored.get(line.record)
        if row is None:
            records.append(record(run_id, "deleted", line.line_no, "failed", line.record, "deleted_unknown_user"))
            continue
        already = line.record in deleted and row["disabled"] and row["password_hash"] is None
        if not already:
            state = row["state"] if row["state"] == MigrationState.migrated.value else \
                MigrationState.reset_required.value
            changes.append({"k": line.record, "state": state, "now": clock(), "changed": row["state"] != state,
                            "keycloak_user_id": row["keycloak_user_id"],
                            "disable": row["keycloak_user_id"] or keycloak_id(realm, line.record)})
            # The same userID again in this batch finds the user deleted, as a later batch would.
            stored[line.record] = {**row, "disabled": True, "password_hash": None, "state": state}
            deleted.add(line.record)
        records.append(record(run_id, "deleted", line.line_no, "unchanged" if already else "disabled", line.record))
    return records, changes


class Deletions:
    def __init__(self, ledger: Ledger, store: LegacyStore, writer: KeycloakWriter | None, realm: str,
                 dry_run: bool):
        self.ledger = ledger
        self.store = store
        self.writer = writer      # None in a dry run
        self.realm = realm
        self.dry_run = dry_run

    def run(self, path, batch_size: int) -> None:
        for lines in reader.batched(reader.read_deleted(path), batch_size):
            done = self.ledger.done_lines("deleted", lines[0].line_no, lines[-1].line_no)
            todo = [line for line in lines if line.line_no not in done]
            ids = [line.record for line in todo if not line.reason and line.record]
            records, changes = decide(self.ledger.run_id, self.realm, todo, self.store.rows(ids),
                                      deleted_users(self.store.engine, ids))
            self._write(records, changes)

    def _write(self, records: list[dict], changes: list[dict]) -> None:
        """Keycloak first (disabling twice is harmless), then the store, the audit and the ledger at once."""
        if self.writer is not None and changes:
            # One call for the batch; a user missing from Keycloak is fine (nothing there to disable).
            self.writer.disable_many([change["disable"] for change in changes])
        with self.ledger.begin() as conn:
            if not self.dry_run:
                for change in changes:
                    self.store.mark_deleted(conn, change["k"], change["state"], change["now"], change["changed"])
                    audit.record(conn, "deleted", change["now"], kii_user_id=change["k"],
                                 keycloak_user_id=change["keycloak_user_id"], path="import",
                                 detail={"run": self.ledger.run_id})
            self.ledger.add(conn, records)
