"""`identity migration verify`: reconcile the export with Keycloak and the legacy store.

Independent of the import's ledger: it reads the export again, lists every
Keycloak user of the realm into a scratch SQLite database (constant memory),
and compares user by user. Every profile line ends in exactly one of
matched, different, missing or invalid (the import's own validation
refused it); users that exist in Keycloak or the store but not in the
export are reported as extra.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter, defaultdict

import sqlalchemy as sa

from identity.importer import reader
from identity.importer.profile import RecordError, keycloak_id, parse_user, to_keycloak
from identity.importer.reader import batched
from identity.importer.stage import hash_fingerprint
from identity.keycloak.writer import KeycloakWriter
from identity.legacy import hashes
from identity.legacy.models import MigrationState
from identity.legacy.store import LegacyStore

EXAMPLES = 5
COMPARED = ("username", "email", "enabled", "emailVerified")


class Verifier:
    def __init__(self, store: sa.Engine, keycloak: KeycloakWriter, realm: str, legacy, secret_key,
                 bmp_only: bool = False):
        self.store, self.keycloak, self.realm, self.legacy = store, keycloak, realm, legacy
        self.bmp_only = bmp_only
        self.secret = secret_key.encode() if isinstance(secret_key, str) else secret_key
        self._scratch = tempfile.NamedTemporaryFile(prefix="identity-verify-", suffix=".db")
        self.scratch = sa.create_engine(f"sqlite:///{self._scratch.name}")
        meta = sa.MetaData()
        self.kc = sa.Table("kc", meta, sa.Column("id", sa.String, primary_key=True),
                           sa.Column("kii_user_id", sa.String, index=True), sa.Column("data", sa.Text))
        self.seen = sa.Table("seen", meta, sa.Column("kii_user_id", sa.String, primary_key=True))
        # Sign-in identifiers already claimed by an earlier line: a later claimant was refused by the import.
        self.claims = sa.Table("claims", meta, sa.Column("kind", sa.String, primary_key=True),
                               sa.Column("value", sa.String, primary_key=True), sa.Column("kii_user_id", sa.String))
        self.deleted = sa.Table("deleted", meta, sa.Column("kii_user_id", sa.String, primary_key=True))
        self.hashes = sa.Table("hashes", meta, sa.Column("kii_user_id", sa.String, primary_key=True),
                               sa.Column("fingerprint", sa.String), sa.Column("usable", sa.Boolean))
        meta.create_all(self.scratch)
        self.counts: Counter = Counter()
        self.reasons: dict[str, list] = defaultdict(list)
        self.reason_counts: Counter = Counter()

    def note(self, reason: str, example: str) -> None:
        self.reason_counts[reason] += 1
        if len(self.reasons[reason]) < EXAMPLES:
            self.reasons[reason].append(example)

    def fingerprint(self, encoded: str, salt: str | None) -> str:
        return hash_fingerprint(self.secret, encoded, salt)

    # --- inputs into the scratch database ---------------------------------------

    def load_keycloak(self, page: int = 500) -> None:
        first = 0
        while True:
            users = self.keycloak.users_page(first, page)
            rows = [{"id": u["id"], "kii_user_id": (u.get("attributes") or {}).get("kii_user_id", [None])[0],
                     "data": json.dumps(u)} for u in users]
            if rows:
                with self.scratch.begin() as conn:
                    conn.execute(self.kc.insert().prefix_with("OR REPLACE"), rows)
            if len(users) < page:
                return
            first += page

    def load_hashes(self, path) -> None:
        for lines in batched(reader.read_hashes(path), 5000):
            rows = {}
            for line in lines:
                if line.reason or not line.record:
                    continue
                user_id, encoded, salt = line.record
                try:
                    hashes.guarded(hashes.identify(encoded).parse, encoded, self.legacy.context(salt))
                    usable = True
                except hashes.LegacyHashError:
                    usable = False
                rows.setdefault(user_id, {"kii_user_id": user_id, "fingerprint": self.fingerprint(encoded, salt),
                                          "usable": usable})
            if rows:
                with self.scratch.begin() as conn:
                    conn.execute(self.hashes.insert().prefix_with("OR IGNORE"), list(rows.values()))

    # --- the comparison ------------------------------------------------------------

    def load_deleted(self, path) -> None:
        for lines in batched(reader.read_deleted(path), 5000):
            ids = [{"kii_user_id": line.record} for line in lines if not line.reason and line.record]
            if ids:
                with self.scratch.begin() as conn:
                    conn.execute(self.deleted.insert().prefix_with("OR IGNORE"), ids)

    def run(self, profiles, hashes_path, deleted_path=None) -> dict:
        self.load_keycloak()
        if hashes_path:
            self.load_hashes(hashes_path)
        if deleted_path:
            self.load_deleted(deleted_path)
        for lines in batched(reader.read_profiles(profiles), 500):
            self._compare(lines)
        self._extras()
        differs = self.counts["different"] + self.counts["missing"] + self.counts["extra"]
        return {
            "totals": {"input": self.counts["input"], "matched": self.counts["matched"],
                       "different": self.counts["different"], "missing": self.counts["missing"],
                       "invalid": self.counts["invalid"], "extra": self.counts["extra"]},
            "add_up": self.counts["input"] == sum(self.counts[k] for k in ("matched", "different", "missing",
                                                                           "invalid")),
            "reasons": {r: {"count": self.reason_counts[r], "examples": self.reasons[r]}
                        for r in sorted(self.reason_counts, key=lambda r: (-self.reason_counts[r], r))},
            "ok": differs == 0,
        }

    def _compare(self, lines) -> None:
        users = []
        for line in lines:
            self.counts["input"] += 1
            if line.reason:
                self.counts["invalid"] += 1
                continue
            try:
                users.append(parse_user(line.record, self.realm))
            except RecordError:
                self.counts["invalid"] += 1
        ids = [u.kii_user_id for u in users]
        with self.scratch.connect() as conn:
            seen = set(conn.execute(sa.select(self.seen.c.kii_user_id).where(self.seen.c.kii_user_id.in_(ids)))
                       .scalars())
            kc = {r.id: json.loads(r.data) for r in conn.execute(
                sa.select(self.kc).where(self.kc.c.id.in_([keycloak_id(self.realm, i) for i in ids])))}
            staged = {r.kii_user_id: r for r in conn.execute(
                sa.select(self.hashes).where(self.hashes.c.kii_user_id.in_(ids)))}
            deleted = set(conn.execute(sa.select(self.deleted.c.kii_user_id)
                                       .where(self.deleted.c.kii_user_id.in_(ids))).scalars())
        stored = LegacyStore(self.store).rows(ids)
        kinds = ("username", "email", "phone_number")
        with self.scratch.connect() as conn:
            claimed = {(r.kind, r.value): r.kii_user_id for r in conn.execute(sa.select(self.claims).where(
                sa.tuple_(self.claims.c.kind, self.claims.c.value).in_(
                    [(k, getattr(u, k)) for u in users for k in kinds if getattr(u, k)])))} if users else {}
        fresh, new_claims = [], {}
        for user in users:
            uid = user.kii_user_id
            values = [(k, getattr(user, k)) for k in kinds if getattr(user, k)]
            if uid in seen or uid in fresh or any(
                    (claimed.get(v) or new_claims.get(v, uid)) != uid for v in values):
                self.counts["invalid"] += 1  # a duplicate userID or identifier: the import refused it too
                continue
            fresh.append(uid)
            new_claims.update({v: uid for v in values})
            if uid in deleted:  # deleted on Kii: expected disabled, without a legacy hash
                user.disabled = True
                staged_hash = None
            else:
                staged_hash = staged.get(uid)
            problems = self._problems(user, kc.get(user.keycloak_id), stored.get(uid), staged_hash)
            if not problems:
                self.counts["matched"] += 1
            elif any(p.startswith("missing") for p in problems):
                self.counts["missing"] += 1
            else:
                self.counts["different"] += 1
            for problem in problems:
                self.note(problem, uid)
        if fresh:
            with self.scratch.begin() as conn:
                conn.execute(self.seen.insert(), [{"kii_user_id": uid} for uid in fresh])
                conn.execute(self.claims.insert().prefix_with("OR IGNORE"),
                             [{"kind": k, "value": v, "kii_user_id": uid} for (k, v), uid in new_claims.items()])

    def _problems(self, user, kc_user, row, staged) -> list[str]:
        problems = []
        if kc_user is None:
            problems.append("missing_in_keycloak")
        else:
            desired = to_keycloak(user, self.bmp_only)
            attributes = kc_user.get("attributes") or {}
            if any(kc_user.get(f) != desired.get(f) for f in COMPARED if f != "email") or \
                    (kc_user.get("email") or None) != desired.get("email") or \
                    any(attributes.get(k) != v for k, v in desired["attributes"].items()):
                problems.append("keycloak_differs")
        if row is None:
            problems.append("missing_in_store")
            return problems
        if row["keycloak_user_id"] != user.keycloak_id or bool(row["disabled"]) != user.disabled:
            problems.append("store_differs")
        state = MigrationState(row["state"])
        if user.has_password and staged is not None and staged.usable and state != MigrationState.migrated:
            if state != MigrationState.pending or row["password_hash"] is None:
                problems.append("hash_missing_in_store")
            elif row["hash_fingerprint"] != staged.fingerprint:
                problems.append("hash_differs")
        return problems

    def _extras(self) -> None:
        with self.scratch.connect() as conn:
            for row in conn.execute(sa.select(self.kc.c.kii_user_id).where(
                    self.kc.c.kii_user_id.is_not(None),
                    ~sa.exists().where(self.seen.c.kii_user_id == self.kc.c.kii_user_id))):
                self.counts["extra"] += 1
                self.note("extra_in_keycloak", row.kii_user_id)
        last = ""
        while True:
            ids = LegacyStore(self.store).ids_after(last)
            if not ids:
                return
            last = ids[-1]
            with self.scratch.connect() as conn:
                seen = set(conn.execute(sa.select(self.seen.c.kii_user_id).where(self.seen.c.kii_user_id.in_(ids)))
                           .scalars())
            for uid in ids:
                if uid not in seen:
                    self.counts["extra"] += 1
                    self.note("extra_in_store", uid)

