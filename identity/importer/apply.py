"""A planned batch written: Keycloak first (idempotent), then the store rows and the ledger rows in one
transaction, so a line is done exactly when its ledger row is committed."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import sqlalchemy as sa

from identity import audit
from identity.importer.ledger import Ledger
from identity.importer.plan import Plan, refusal_reason
from identity.keycloak.writer import KeycloakWriter
from identity.legacy.store import LegacyStore


class Timings:
    """Where the time goes (seconds, summed over threads): reported for the benchmark."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    def add(self, name: str, started: float) -> None:
        with self._lock:
            self.seconds[name] += time.perf_counter() - started

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 2) for k, v in sorted(self.seconds.items())}


class Applier:
    def __init__(self, ledger: Ledger, store: LegacyStore, writer: KeycloakWriter | None, dry_run: bool,
                 timings: Timings):
        self.ledger = ledger
        self.store = store
        self.writer = writer      # None in a dry run
        self.dry_run = dry_run
        self.timings = timings

    def apply(self, plan: Plan) -> None:
        """In a worker thread."""
        if self.writer is not None:
            started = time.perf_counter()
            self._write_keycloak(plan)
            self.timings.add("keycloak", started)
        started = time.perf_counter()
        try:
            self._commit(plan)
        except sa.exc.IntegrityError:
            # The store's unique keys compare with the database's collation (MariaDB's utf8mb4 ones take
            # "U1" for "u1" and "josé" for "jose", and ignore zero-width characters), which the planner's
            # exact comparison cannot foresee within a batch: commit user by user, fail the refused ones.
            self._commit_each(plan)
        self.timings.add("store", started)

    def _write_keycloak(self, plan: Plan) -> None:
        # Creates and updates in one call; a user gone from Keycloak behind the importer's back is made again.
        answers = self.writer.write([rep for _, rep in plan.creates] + [rep for _, rep in plan.updates])
        refused = {uid for uid, (outcome, _) in answers.items() if outcome == "refused"}
        if refused:
            # Another Keycloak user, not imported, holds this username or email.
            plan.refuse(refused, "keycloak_conflict")

    def _commit(self, plan: Plan) -> None:
        with self.ledger.begin() as conn:
            if not self.dry_run:
                if plan.inserts:
                    self.store.insert(conn, plan.inserts)
                    conn.execute(audit.TABLE.insert(), [
                        audit.row("imported", row["created_at"], kii_user_id=row["kii_user_id"],
                                  keycloak_user_id=row["keycloak_user_id"], path="import",
                                  detail={"run": self.ledger.run_id, "state": row["state"]})
                        for row in plan.inserts])
                if plan.changes:
                    self.store.update_many(conn, plan.changes)
            self.ledger.add(conn, plan.records)

    def _commit_each(self, plan: Plan) -> None:
        rest, singles = plan.per_user()
        self._commit(rest)
        for single in singles:
            try:
                self._commit(single)
            except sa.exc.IntegrityError as exc:
                if single.inserts and self.writer is not None:
                    # Created a moment ago for this line: Keycloak must not keep a user the store refused.
                    # (Before the ledger row: a run killed in between redoes both.)
                    self.writer.delete_user(single.inserts[0]["keycloak_user_id"])
                # An update already reached Keycloak; the store keeps the old identifiers, and
                # `migration verify` names the user (keycloak_differs) until the data is fixed.
                self._commit(single.refused(refusal_reason(self.store.refused_column(exc))))
