"""The hash export, staged before the profiles and settled after them.

Staging checks each row (its format parses; no hash is verified, there is no password yet) and
fingerprints it, so the planner can join hashes to profiles from the ledger's database rather than
from memory. Settling gives each hash line that no profile line took its outcome (`settle_hash`).
"""

from __future__ import annotations

import hashlib
import hmac

import sqlalchemy as sa

from identity.importer import reader
from identity.importer.facts import deleted_users
from identity.importer.ledger import Ledger
from identity.importer.plan import record, settle_hash
from identity.legacy import hashes
from identity.legacy.credentials import LegacySettings
from identity.legacy.store import LegacyStore
from identity.progress import Progress

SALT_MAX = 255   # legacy_users.salt
BATCH = 5000


def hash_fingerprint(secret: bytes, encoded: str, salt: str | None) -> str:
    """What tells one delivery's hash from another's, without keeping the hash readable."""
    message = b"legacy-hash\0" + encoded.encode() + b"\0" + (salt or "").encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def hash_problem(encoded: str, salt: str | None, legacy: LegacySettings) -> str | None:
    """Why the store cannot use this hash (its reason code), or None."""
    try:
        fmt = hashes.identify(encoded)
        hashes.guarded(fmt.parse, encoded, legacy.context(salt))
        if salt is not None and len(salt) > SALT_MAX:
            raise hashes.MalformedHash("salt too long for the store")
    except hashes.LegacyHashError as exc:
        return exc.code
    return None


class HashStage:
    def __init__(self, ledger: Ledger, legacy: LegacySettings, secret: bytes):
        self.ledger = ledger
        self.legacy = legacy
        self.secret = secret

    @property
    def run_id(self) -> str:
        return self.ledger.run_id

    def stage(self, path) -> None:
        """Every row of the hash export staged or recorded as failed, once per run."""
        if self.ledger.hashes_staged():
            return
        self.ledger.restart_staging()
        progress = Progress(None, "staging hashes", unit="row")
        for lines in reader.batched(reader.read_hashes(path), BATCH):
            rows, records = self._check(lines)
            self._write(rows, records)
            progress.update(len(lines))
        progress.close()
        self.ledger.mark_staged()

    def _check(self, lines: list[reader.Line]) -> tuple[list[dict], list[dict]]:
        """(rows to stage, records of the lines that failed)."""
        rows, records, seen = [], [], set()
        already = self.ledger.staged_ids([line.record[0] for line in lines if line.record and not line.reason])
        for line in lines:
            if line.reason:
                user_id = line.record[0] if line.record else None
                records.append(record(self.run_id, "hashes", line.line_no, "failed", user_id, line.reason))
                continue
            user_id, encoded, salt = line.record
            if user_id in already or user_id in seen:
                records.append(record(self.run_id, "hashes", line.line_no, "failed", user_id, "duplicate_hash_row"))
                continue
            seen.add(user_id)
            problem = hash_problem(encoded, salt, self.legacy)
            # An unusable hash is never stored, so it is not staged either (nor can a huge one overflow).
            rows.append({"run_id": self.run_id, "kii_user_id": user_id, "line_no": line.line_no,
                         "password_hash": None if problem else encoded, "salt": None if problem else salt,
                         "problem": problem, "fingerprint": hash_fingerprint(self.secret, encoded, salt)})
        return rows, records

    def _write(self, rows: list[dict], records: list[dict]) -> None:
        try:
            self.ledger.stage(rows, records)
        except sa.exc.IntegrityError:
            # The database's collation saw a duplicate the exact comparison did not (MariaDB's utf8mb4
            # collations take "U1" for "u1"): stage row by row, a refused row is a duplicate.
            for row in rows:
                try:
                    self.ledger.stage([row], [])
                except sa.exc.IntegrityError:
                    records.append(record(self.run_id, "hashes", row["line_no"], "failed", row["kii_user_id"],
                                          "duplicate_hash_row"))
            if records:
                self.ledger.stage([], records)

    def settle(self, store: LegacyStore) -> None:
        """Each hash line no profile line took: a user of an earlier delivery, or nobody's."""
        while rows := self.ledger.unsettled_hashes(BATCH):
            ids = [r.kii_user_id for r in rows]
            in_store, in_ledger = set(store.rows(ids)), self.ledger.profile_ids(ids)
            deleted = deleted_users(store.engine, ids)
            records = []
            for row in rows:
                outcome, reason = settle_hash(row.kii_user_id, row.problem, in_store, in_ledger, deleted)
                records.append(record(self.run_id, "hashes", row.line_no, outcome, row.kii_user_id, reason))
            with self.ledger.begin() as conn:
                self.ledger.add(conn, records)
