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

import time
from collections import Counter

import sqlalchemy as sa

from identity import audit
from identity.importer.reconcile import BY_NAME, line_predicates
from identity.importer.verify_inputs import Inputs
from identity.keycloak.writer import KeycloakWriter
from identity.legacy.store import joinable

EXAMPLES = 5


class Verifier:
    def __init__(self, store: sa.Engine, keycloak: KeycloakWriter, realm: str, legacy, secret_key,
                 bmp_only: bool = False):
        self.store = store
        self.inputs = Inputs(store, keycloak, realm, legacy, secret_key, bmp_only)
        self.export, self.kc, self.hashes, self.deleted = \
            self.inputs.export, self.inputs.kc, self.inputs.hashes, self.inputs.deleted
        self.counts: Counter = Counter()

    def run(self, profiles, hashes_path, deleted_path=None) -> dict:
        with self.inputs.loaded(profiles, hashes_path, deleted_path):
            self.counts["input"] = self.inputs.lines
            started = time.perf_counter()
            result = self._result()
            self.inputs.timings["compare"] = round(time.perf_counter() - started, 2)
            return result

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
                # Lines filled in from an earlier verify of the same line, and lines parsed (expected.py).
                "lines_worked_out": self.inputs.counts, "timings_s": self.inputs.timings}

    def _joined(self):
        e, k, h = self.export, self.kc.alias("k"), self.hashes.alias("h")
        s = joinable("s")
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
        e, k, d, s = self.export, self.kc, self.deleted, joinable("s")
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

