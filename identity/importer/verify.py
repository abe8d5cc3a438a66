"""`identity migration verify`: reconcile a delivery with Keycloak and the legacy store, in the database.

Independent of the import's ledger: it reads the export again into scratch tables of the store's
database, reads every Keycloak user of the realm in pages of thousands through the provider
(`users/compact`: only what is compared, in id order) into another, and then asks the database the
questions of reconcile.py, which says what each difference means and what to do about it. Every
profile line ends in exactly one of matched, different, missing or invalid (the import's own
validation refused it); Keycloak users and store rows no line names are counted apart: sign-ups
since go-live, deletions, and Kii users this delivery leaves out.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from identity import audit
from identity.importer import reader
from identity.importer.ledger import chunks
from identity.importer.reconcile import BY_NAME, PARTS, compared, line_predicates
from identity.importer.profile import RecordError, parse_user, to_keycloak
from identity.importer.stage import hash_fingerprint
from identity.keycloak.writer import KeycloakWriter
from identity.legacy import hashes
from identity.legacy.models import LegacyUser

EXAMPLES = 5
BATCH = 5000
PAGE = 5000
USERS = LegacyUser.__table__
IDENTIFIERS = ("username", "email", "phone_number")


def _parts(*left_out: str) -> list[sa.Column]:
    return [sa.Column(name, sa.String(320) if name == "email" else sa.String(40)) for name in PARTS
            if name not in left_out]


def scratch_tables(suffix: str) -> sa.MetaData:
    """This run's tables, named apart so that two verifies never meet; dropped when it ends."""
    meta = sa.MetaData()
    sa.Table(f"verify_{suffix}_export", meta,
             sa.Column("line_no", sa.BigInteger, primary_key=True, autoincrement=False),
             sa.Column("kii_user_id", sa.String(64), nullable=False, index=True),
             sa.Column("keycloak_id", sa.String(36), nullable=False),
             sa.Column("username", sa.String(255), index=True), sa.Column("email", sa.String(320), index=True),
             sa.Column("phone_number", sa.String(20), index=True), *_parts("email"),
             sa.Column("disabled", sa.Boolean), sa.Column("has_password", sa.Boolean),
             sa.Column("deleted", sa.Boolean), sa.Column("invalid", sa.Boolean, default=False))
    sa.Table(f"verify_{suffix}_keycloak", meta, sa.Column("id", sa.String(36), primary_key=True),
             sa.Column("kii_user_id", sa.String(64), index=True), *_parts(),
             sa.Column("enabled", sa.Boolean), sa.Column("password", sa.Boolean))
    sa.Table(f"verify_{suffix}_hashes", meta, sa.Column("kii_user_id", sa.String(64), primary_key=True),
             sa.Column("fingerprint", sa.String(64)), sa.Column("usable", sa.Boolean))
    sa.Table(f"verify_{suffix}_deleted", meta, sa.Column("kii_user_id", sa.String(64), primary_key=True))
    return meta


class Verifier:
    def __init__(self, store: sa.Engine, keycloak: KeycloakWriter, realm: str, legacy, secret_key,
                 bmp_only: bool = False):
        self.store, self.keycloak, self.realm, self.legacy = store, keycloak, realm, legacy
        self.bmp_only = bmp_only
        self.secret = secret_key.encode() if isinstance(secret_key, str) else secret_key
        suffix = secrets.token_hex(4)
        self.meta = scratch_tables(suffix)
        self.export, self.kc, self.hashes, self.deleted = (
            self.meta.tables[f"verify_{suffix}_{name}"] for name in ("export", "keycloak", "hashes", "deleted"))
        self.counts: Counter = Counter()
        self.timings: dict[str, float] = {}

    def run(self, profiles, hashes_path, deleted_path=None) -> dict:
        self.meta.create_all(self.store)
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                keycloak = pool.submit(self._timed, "keycloak", self.load_keycloak)
                self._timed("export", self._load_files, profiles, hashes_path, deleted_path)
                keycloak.result()
            return self._timed("compare", self._result)
        finally:
            self.meta.drop_all(self.store)

    def _timed(self, name: str, step, *args):
        started = time.perf_counter()
        try:
            return step(*args)
        finally:
            self.timings[name] = round(time.perf_counter() - started, 2)

    # --- inputs into the scratch tables ----------------------------------------------------

    def load_keycloak(self) -> None:
        after = None
        while True:
            users, after = self.keycloak.compact_page(after, PAGE)
            rows = [{"id": u["id"], "kii_user_id": ((u.get("attributes") or {}).get("kii_user_id") or [None])[0],
                     **compared(u["username"], u.get("email"), u["enabled"], u["emailVerified"], u.get("attributes")),
                     "enabled": bool(u["enabled"]), "password": bool(u["password"])} for u in users]
            self._insert(self.kc, rows)
            if after is None:
                return

    def _load_files(self, profiles, hashes_path, deleted_path) -> None:
        deleted = set()
        if deleted_path:
            for lines in reader.batched(reader.read_deleted(deleted_path), BATCH):
                ids = {line.record for line in lines if not line.reason and line.record} - deleted
                deleted |= ids
                self._insert(self.deleted, [{"kii_user_id": i} for i in ids])
        if hashes_path:
            seen = set()
            for lines in reader.batched(reader.read_hashes(hashes_path), BATCH):
                rows = [self._hash_row(line) for line in lines if not line.reason and line.record
                        and line.record[0] not in seen]
                rows = list({row["kii_user_id"]: row for row in reversed(rows)}.values())  # the first line wins
                seen.update(row["kii_user_id"] for row in rows)
                self._insert(self.hashes, rows)
        for lines in reader.batched(reader.read_profiles(profiles), BATCH):
            self._insert(self.export, [row for line in lines if (row := self._line_row(line, deleted))])
        self._mark_invalid()

    def _hash_row(self, line) -> dict:
        user_id, encoded, salt = line.record
        try:
            hashes.guarded(hashes.identify(encoded).parse, encoded, self.legacy.context(salt))
            usable = True
        except hashes.LegacyHashError:
            usable = False
        return {"kii_user_id": user_id, "fingerprint": hash_fingerprint(self.secret, encoded, salt), "usable": usable}

    def _line_row(self, line, deleted: set) -> dict | None:
        self.counts["input"] += 1
        if line.reason:
            return None
        try:
            user = parse_user(line.record, self.realm)
        except RecordError:
            return None
        if user.kii_user_id in deleted:
            user.disabled = True  # deleted on Kii: expected disabled, without a legacy hash
        want = to_keycloak(user, self.bmp_only)
        return {"line_no": line.line_no, "kii_user_id": user.kii_user_id, "keycloak_id": user.keycloak_id,
                "username": user.username, "phone_number": user.phone_number,
                **compared(want["username"], want.get("email"), want["enabled"], want["emailVerified"],
                           want["attributes"]),
                "disabled": user.disabled, "has_password": user.has_password,
                "deleted": user.kii_user_id in deleted, "invalid": False}

    def _insert(self, table: sa.Table, rows: list[dict]) -> None:
        if rows:
            with self.store.begin() as conn:
                conn.execute(table.insert(), rows)

    def _mark_invalid(self) -> None:
        """Lines the import refuses as duplicates: a userID an earlier line has, or a username, email or
        phone an earlier line of another user claims (as the database's collation compares them)."""
        e = self.export
        invalid = set()
        with self.store.connect() as conn:
            for name in ("kii_user_id", *IDENTIFIERS):
                column = e.c[name]
                firsts = sa.select(column.label("value"), sa.func.min(e.c.line_no).label("first")) \
                    .where(column.is_not(None)).group_by(column).having(sa.func.count() > 1).subquery()
                owner = e.alias("owner")
                query = sa.select(e.c.line_no).join(firsts, column == firsts.c.value) \
                    .join(owner, owner.c.line_no == firsts.c.first).where(e.c.line_no != firsts.c.first)
                if name != "kii_user_id":
                    query = query.where(e.c.kii_user_id != owner.c.kii_user_id)
                invalid.update(conn.execute(query).scalars())
        with self.store.begin() as conn:
            for chunk in chunks(sorted(invalid)):
                conn.execute(e.update().where(e.c.line_no.in_(chunk)).values(invalid=True))

    # --- the comparison --------------------------------------------------------------------

    def _result(self) -> dict:
        reasons = self._line_reasons()
        reasons.update(self._extras())
        c = self.counts
        extra = sum(r["count"] for name, r in reasons.items() if BY_NAME[name].kind == "extra" and BY_NAME[name].action)
        totals = {"input": c["input"], "matched": c["matched"], "different": c["different"], "missing": c["missing"],
                  "invalid": c["input"] - c["valid"], "extra": extra,
                  "signed_up_here": reasons.get("signed_up_here", {}).get("count", 0)}
        ordered = sorted(reasons, key=lambda r: (not reasons[r]["action"], -reasons[r]["count"], r))
        return {"totals": totals,
                "add_up": totals["input"] == sum(totals[k] for k in ("matched", "different", "missing", "invalid")),
                "reasons": {name: reasons[name] for name in ordered},
                "ok": not any(reasons[name]["action"] for name in reasons),
                "timings_s": self.timings}

    def _joined(self):
        e, k, h = self.export, self.kc.alias("k"), self.hashes.alias("h")
        s = USERS.alias("s")
        joined = e.outerjoin(k, k.c.id == e.c.keycloak_id).outerjoin(s, s.c.kii_user_id == e.c.kii_user_id) \
            .outerjoin(h, h.c.kii_user_id == e.c.kii_user_id)
        return joined, line_predicates(e, k, s, h)

    def _line_reasons(self) -> dict:
        joined, predicates = self._joined()
        e = self.export
        missing = sa.or_(*[p for name, p in predicates.items() if BY_NAME[name].kind == "missing"])
        different = sa.or_(*[p for name, p in predicates.items() if BY_NAME[name].kind == "different"])
        flag = lambda condition: sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)  # noqa: E731
        columns = [flag(p).label(name) for name, p in predicates.items()]
        columns += [sa.func.count().label("valid"), flag(missing).label("missing"),
                    flag(sa.and_(sa.not_(missing), different)).label("different")]
        with self.store.connect() as conn:
            # SUM answers a DECIMAL on MariaDB
            row = {k: int(v) for k, v in conn.execute(sa.select(*columns).select_from(joined)
                                                      .where(~e.c.invalid)).mappings().one().items()}
            self.counts.update(valid=row["valid"], missing=row["missing"], different=row["different"],
                               matched=row["valid"] - row["missing"] - row["different"])
            return {name: self._entry(name, row[name], conn, sa.select(e.c.kii_user_id).select_from(joined)
                                      .where(~e.c.invalid, predicates[name]).order_by(e.c.line_no))
                    for name in predicates if row[name]}

    def _extras(self) -> dict:
        """Keycloak users and store rows that no line of the export names."""
        e, k, d, s = self.export, self.kc, self.deleted, USERS
        named = sa.exists().where(e.c.kii_user_id == k.c.kii_user_id)
        gone = sa.or_(sa.exists().where(d.c.kii_user_id == k.c.kii_user_id),
                      sa.exists().where(audit.TABLE.c.kii_user_id == k.c.kii_user_id, audit.TABLE.c.event == "deleted"))
        store_gone = sa.or_(sa.exists().where(d.c.kii_user_id == s.c.kii_user_id),
                            sa.exists().where(audit.TABLE.c.kii_user_id == s.c.kii_user_id,
                                              audit.TABLE.c.event == "deleted"))
        questions = {
            "signed_up_here": sa.select(k.c.id).where(k.c.kii_user_id.is_(None)).order_by(k.c.id),
            "deleted_on_kii": sa.select(k.c.kii_user_id).where(k.c.kii_user_id.is_not(None), ~named, gone,
                                                               ~k.c.enabled).order_by(k.c.id),
            "deleted_still_enabled": sa.select(k.c.kii_user_id).where(k.c.kii_user_id.is_not(None), ~named, gone,
                                                                      k.c.enabled).order_by(k.c.id),
            "not_in_this_delivery": sa.select(k.c.kii_user_id).where(k.c.kii_user_id.is_not(None), ~named,
                                                                     ~gone).order_by(k.c.id),
            "extra_in_store": sa.select(s.c.kii_user_id).where(
                ~sa.exists().where(e.c.kii_user_id == s.c.kii_user_id),
                ~sa.exists().where(k.c.kii_user_id == s.c.kii_user_id), ~store_gone).order_by(s.c.kii_user_id),
        }
        found = {}
        with self.store.connect() as conn:
            for name, query in questions.items():
                count = conn.execute(sa.select(sa.func.count()).select_from(query.order_by(None).subquery())).scalar()
                if count:
                    found[name] = self._entry(name, count, conn, query)
        return found

    @staticmethod
    def _entry(name: str, count: int, conn, query) -> dict:
        reason = BY_NAME[name]
        return {"count": int(count), "action": reason.action, "what": reason.what, "do": reason.do,
                "examples": list(conn.execute(query.limit(EXAMPLES)).scalars())}

