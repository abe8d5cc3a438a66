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
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from identity import audit
from identity.importer.reconcile import BY_NAME, line_predicates
from identity.importer.verify_inputs import Inputs
from identity.keycloak.writer import KeycloakWriter
from identity.legacy.store import joinable

EXAMPLES = 5
BATCH = 5000   # rows fetched at a time from a pass's answer
SIDE_BY_SIDE = 2   # passes the database answers at once (one core each)


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
        reasons = self._passes()
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

    def _passes(self) -> dict:
        """Every pass over the tables (the lines in ranges of line numbers, then the extras), side by side:
        the database answers each statement on one core. Their tallies are merged in the passes' order,
        so the examples are the ones a single pass in line order would give."""
        workers = 1 if self.store.dialect.name == "sqlite" else SIDE_BY_SIDE
        e = self.export
        with self.store.connect() as conn:   # the last number, not the count: an empty line has a number, no row
            last, valid = conn.execute(sa.select(sa.func.max(e.c.line_no),
                                                 sa.func.count(sa.case((~e.c.invalid, 1))))).one()
        last = last or 0
        bounds = [last * share // SIDE_BY_SIDE for share in range(SIDE_BY_SIDE + 1)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            lines = [pool.submit(self._line_reasons, first + 1, to) for first, to in zip(bounds, bounds[1:])]
            extras = [pool.submit(self._extra_pass, *each) for each in self._extra_passes()]
            tallies = [job.result() for job in lines]
            found = Tally.merged(tallies).entries()
            for job in extras:
                found.update(job.result().entries())
        missing, different = (sum(t.kinds[kind] for t in tallies) for kind in ("missing", "different"))
        self.counts.update(valid=valid, missing=missing, different=different, matched=valid - missing - different)
        return found

    def _line_reasons(self, first: int, last: int) -> "Tally":
        """One pass over a range of lines joined to Keycloak, the store and the hashes: only the lines some
        reason holds for come back (few, when the migration is sound), with the reasons that hold, in line
        order."""
        joined, predicates = self._joined()
        e = self.export
        query = sa.select(e.c.kii_user_id, *_held(predicates)).select_from(joined) \
            .where(e.c.line_no.between(first, last), ~e.c.invalid, sa.or_(*predicates.values())).order_by(e.c.line_no)
        tally = Tally(predicates)
        with self.store.connect() as conn:
            for row in conn.execution_options(stream_results=True, yield_per=BATCH).execute(query).mappings():
                kinds = {BY_NAME[name].kind for name in tally.add(row["kii_user_id"], row)}
                # A line counts once: missing, else different.
                tally.kinds["missing" if "missing" in kinds else "different" if "different" in kinds else ""] += 1
        return tally

    def _extra_passes(self) -> list[tuple]:
        """Keycloak users and store rows that no line of the export names: one pass over each."""
        e, k, d, s = self.export, self.kc, self.deleted, joinable("s")
        named = sa.exists().where(e.c.kii_user_id == k.c.kii_user_id)
        gone = sa.or_(sa.exists().where(d.c.kii_user_id == k.c.kii_user_id),
                      sa.exists().where(audit.TABLE.c.kii_user_id == k.c.kii_user_id, audit.TABLE.c.event == "deleted"))
        store_gone = sa.or_(sa.exists().where(d.c.kii_user_id == s.c.kii_user_id),
                            sa.exists().where(audit.TABLE.c.kii_user_id == s.c.kii_user_id,
                                              audit.TABLE.c.event == "deleted"))
        kii = k.c.kii_user_id.is_not(None)
        passes = [
            # (the example each row gives, the table's order, the reasons)
            (sa.func.coalesce(k.c.kii_user_id, k.c.id), k.c.id, {
                "signed_up_here": k.c.kii_user_id.is_(None),
                "deleted_on_kii": sa.and_(kii, ~named, gone, ~k.c.enabled),
                "deleted_still_enabled": sa.and_(kii, ~named, gone, k.c.enabled),
                "not_in_this_delivery": sa.and_(kii, ~named, ~gone)}),
            (s.c.kii_user_id, s.c.kii_user_id, {
                "extra_in_store": sa.and_(~sa.exists().where(e.c.kii_user_id == s.c.kii_user_id),
                                          ~sa.exists().where(k.c.kii_user_id == s.c.kii_user_id), ~store_gone)}),
        ]
        return passes

    def _extra_pass(self, example, order, reasons) -> "Tally":
        tally = Tally(reasons)
        query = sa.select(example.label("example"), *_held(reasons)).where(sa.or_(*reasons.values())).order_by(order)
        with self.store.connect() as conn:
            for row in conn.execution_options(stream_results=True, yield_per=BATCH).execute(query).mappings():
                tally.add(row["example"], row)
        return tally


def _held(reasons: dict) -> list:
    """A column per reason, named after it: whether it holds for the row."""
    return [sa.case((condition, True), else_=False).label(name) for name, condition in reasons.items()]


class Tally:
    """Counts of each reason, and its first examples, over the rows a pass brings back."""

    def __init__(self, names):
        self.counts: Counter = Counter()
        self.kinds: Counter = Counter()   # the lines' own kind (missing, different), counted once a line
        self.examples: dict[str, list[str]] = {name: [] for name in names}

    @classmethod
    def merged(cls, tallies: list["Tally"]) -> "Tally":
        """One tally of passes over consecutive ranges, given in order: the examples the first ranges gave."""
        merged = cls(tallies[0].examples)
        for tally in tallies:
            merged.counts.update(tally.counts)
            merged.kinds.update(tally.kinds)
            for name, examples in tally.examples.items():
                merged.examples[name].extend(examples[:EXAMPLES - len(merged.examples[name])])
        return merged

    def add(self, example: str, row) -> list[str]:
        """Count the reasons that hold for this row (its columns, by reason name); which."""
        held = [name for name in self.examples if row[name]]
        for name in held:
            self.counts[name] += 1
            if len(self.examples[name]) < EXAMPLES:
                self.examples[name].append(example)
        return held

    def entries(self) -> dict:
        found = {}
        for name, count in self.counts.items():
            reason = BY_NAME[name]
            found[name] = {"count": count, "action": reason.action, "what": reason.what, "do": reason.do,
                           "examples": self.examples[name]}
        return found
