"""The planner: what each input line comes to, decided in one place, without a database or Keycloak.

A profile line's outcome (imported, updated, unchanged, failed and why, with its warnings) and that
of its user's hash line are decided by `Planner._line`, from `Facts` gathered beforehand (the store,
this run's ledger, the audit trail) and the plans still in flight (batches not committed yet).
Two things only the writes can tell: another Keycloak user holding the name (`Plan.refuse`)
and the database's collation seeing a duplicate (`Plan.refused`); what they mean for the lines is
said here too. Hash lines no profile took are settled by `settle_hash`.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable

from identity.importer.profile import KiiUser, RecordError, has_non_bmp, parse_user, to_keycloak
from identity.importer.reader import Line
from identity.legacy.models import MigrationState, utcnow

REASON_MAX = 48  # import_records.reason
HASH_WARNINGS = ("missing_hash", "unusable_hash")  # the hash line's, not the profile's
# A sign-in identifier another user holds, by kind, as the report's reason.
COLLISIONS = {"username": "login_name_case_collision", "email": "duplicate_email",
              "phone_number": "duplicate_phone"}


def record(run_id: str, source: str, line_no: int, outcome: str, kii_user_id: str | None = None,
           reason: str | None = None, flags: int = 0, user: KiiUser | None = None) -> dict:
    """One ledger row; a line that did not fail keeps the identifiers it claimed."""
    claimed = user is not None and outcome != "failed"
    return {"run_id": run_id, "source": source, "line_no": line_no, "kii_user_id": kii_user_id,
            "outcome": outcome, "reason": reason, "flags": flags,
            "username": user.username if claimed else None,
            "email": user.email if claimed else None,
            "phone_number": user.phone_number if claimed else None}


def line_digest(realm: str, bmp_only: bool, data: bytes) -> str:
    """What tells a profile line from another delivery's: its bytes, and the settings it is read with."""
    return hashlib.sha1(f"{realm}\0{int(bmp_only)}\0".encode() + data.rstrip(b"\r\n")).hexdigest()


def join_reasons(reasons: list[str]) -> str | None:
    """Comma-joined reason codes that fit the ledger's column: whole codes only, never a cut one."""
    kept = []
    for reason in reasons:
        if len(",".join([*kept, reason])) <= REASON_MAX:
            kept.append(reason)
    return ",".join(kept) or None


def refusal_reason(column: str) -> str:
    """The reason for a store row refused by the unique key of `column` (the primary key: the userID)."""
    return COLLISIONS.get(column, "duplicate_user_id")


def settle_hash(kii_user_id: str, problem: str | None, in_store: set, in_ledger: set,
                deleted: set) -> tuple[str, str]:
    """(outcome, reason) of a hash line no profile line of this run took."""
    if kii_user_id in deleted:
        return "failed", "deleted_user_in_export"  # never stored again
    if kii_user_id in in_ledger:
        return "failed", "profile_failed"  # its profile line failed: nothing to attach to
    if kii_user_id in in_store:
        # A user of an earlier delivery that this export does not list: left as it is.
        return ("failed", problem) if problem else ("unused", "user_not_in_export")
    return "failed", "hash_for_unknown_user"


@dataclass
class Facts:
    """What is known of a batch's users before planning it."""

    stored: dict[str, dict] = field(default_factory=dict)    # store rows, by Kii userID
    earlier: set[str] = field(default_factory=set)           # userIDs of this run's committed profile lines
    staged: dict[str, dict] = field(default_factory=dict)    # staged hash rows, by Kii userID
    holders: dict[str, dict] = field(default_factory=dict)   # kind -> value -> the userID holding it
    deleted: set[str] = field(default_factory=set)           # deleted for good (the audit trail)


@dataclass
class Plan:
    """One batch, decided: what to write where."""

    records: list[dict] = field(default_factory=list)         # ledger rows (profiles and hashes)
    creates: list[tuple[KiiUser, dict]] = field(default_factory=list)
    updates: list[tuple[KiiUser, dict]] = field(default_factory=list)
    inserts: list[dict] = field(default_factory=list)         # legacy_users rows
    changes: list[dict] = field(default_factory=list)         # legacy_users updates
    claims: dict = field(default_factory=lambda: defaultdict(dict))  # kind -> value -> kii_user_id

    def claim(self, user: KiiUser) -> None:
        self.claims["id"][user.kii_user_id] = user.kii_user_id
        for kind in COLLISIONS:
            if getattr(user, kind):
                self.claims[kind][getattr(user, kind)] = user.kii_user_id

    def refuse(self, keycloak_ids: set[str], reason: str) -> None:
        """Keycloak refused these users (another user, not imported, holds the username or email): their
        lines fail and their store rows stay as they were; their hash lines are settled later
        (profile_failed)."""
        failed = {user.kii_user_id for user, rep in self.creates + self.updates if rep["id"] in keycloak_ids}
        self.inserts[:] = [row for row in self.inserts if row["kii_user_id"] not in failed]
        self.changes[:] = [change for change in self.changes if change["kii_user_id"] not in failed]
        kept = []
        for line in self.records:
            if line["kii_user_id"] in failed:
                if line["source"] == "hashes":
                    continue
                line = {**line, "outcome": "failed", "reason": reason, "username": None, "email": None,
                        "phone_number": None}
            kept.append(line)
        self.records[:] = kept

    def per_user(self) -> tuple["Plan", list["Plan"]]:
        """The batch split: one plan per user with store rows (their profile and hash lines; a failed
        line naming the same userID is not theirs), and one of the remaining lines."""
        singles = [Plan(inserts=[row]) for row in self.inserts] + [Plan(changes=[c]) for c in self.changes]
        for single in singles:
            uid = (single.inserts or single.changes)[0]["kii_user_id"]
            single.records = [r for r in self.records if r["kii_user_id"] == uid
                              and (r["source"] == "hashes" or r["outcome"] != "failed")]
        mine = {id(r) for single in singles for r in single.records}
        return Plan(records=[r for r in self.records if id(r) not in mine]), singles

    def refused(self, reason: str) -> "Plan":
        """This one user's store rows were refused: its profile line fails, nothing else is written (its
        hash line is settled later as profile_failed)."""
        profile = next(r for r in self.records if r["source"] == "profiles")
        return Plan(records=[{**profile, "outcome": "failed", "reason": reason, "flags": 0,
                              "username": None, "email": None, "phone_number": None}])


class Planner:
    def __init__(self, run_id: str, realm: str, bmp_only: bool = False, clock: Callable = utcnow):
        self.run_id = run_id
        self.realm = realm
        self.bmp_only = bmp_only  # Keycloak stores its user fields in utf8mb3 (MySQL/MariaDB)
        self.clock = clock

    def plan(self, lines: list[Line], lookup: Callable[[list[KiiUser]], Facts],
             in_flight: Iterable[Plan] = (), done: set[int] = frozenset()) -> Plan:
        """The batch's plan, in file order; lines in `done` are already in the ledger (a resumed run).
        `lookup` gives the facts about the users the batch's readable lines name."""
        plan = Plan()
        users: list[tuple[Line, KiiUser]] = []
        for line in lines:
            if line.line_no in done:
                continue
            if line.reason:
                plan.records.append(record(self.run_id, "profiles", line.line_no, "failed", None, line.reason))
                continue
            try:
                users.append((line, parse_user(line.record, self.realm)))
            except RecordError as exc:
                plan.records.append(record(self.run_id, "profiles", line.line_no, "failed", exc.kii_user_id,
                                           exc.reason))
        if users:
            facts = lookup([user for _, user in users])
            plans = [plan, *in_flight]
            for line, user in users:
                self._line(plan, plans, line, user, facts)
        return plan

    def _line(self, plan: Plan, plans: list[Plan], line: Line, user: KiiUser, facts: Facts) -> None:
        """The one place a readable profile line's outcome, and its user's hash line's, is decided."""
        uid = user.kii_user_id
        refusal = self._refusal(user, facts, plans)
        if refusal:
            plan.records.append(record(self.run_id, "profiles", line.line_no, "failed", uid, refusal))
            return
        plan.claim(user)
        row, staged = facts.stored.get(uid), facts.staged.get(uid)
        warnings = list(user.warnings)
        hash_line, warning = _hash_line(user, row, staged)
        warnings += [warning] if warning else []
        if self.bmp_only and has_non_bmp(user):
            warnings.append("non_bmp_replaced")
        # What a later delivery's identical line would be recorded with (its hash line aside).
        written = {"import_digest": line_digest(self.realm, self.bmp_only, line.data or b""),
                   "import_flags": user.flags,
                   "import_reason": join_reasons([w for w in warnings if w not in HASH_WARNINGS])}
        if row is None:
            outcome, hash_line = self._create(plan, user, staged, hash_line, written)
        else:
            outcome, user, hash_line = self._update(plan, user, row, staged, hash_line, warnings, written)
        plan.records.append(record(self.run_id, "profiles", line.line_no, outcome, uid, join_reasons(warnings),
                                   user.flags, user))
        if hash_line is not None:
            plan.records.append(record(self.run_id, "hashes", staged["line_no"], hash_line[0], uid, hash_line[1]))

    def _refusal(self, user: KiiUser, facts: Facts, plans: list[Plan]) -> str | None:
        """Why the line fails before anything is written, or None."""
        uid = user.kii_user_id
        if uid in facts.earlier or any(uid in p.claims["id"] for p in plans):
            return "duplicate_user_id"
        if uid in facts.deleted:
            # Deleted for good: an export that still lists them never brings them back, nor their hash.
            return "deleted_user_in_export"
        for kind, reason in COLLISIONS.items():
            value = getattr(user, kind)
            if not value:
                continue
            owners = [facts.holders.get(kind, {}).get(value)] + [p.claims[kind].get(value) for p in plans]
            if any(owner and owner != uid for owner in owners):
                if kind == "username" and not user.login_name:
                    return "duplicate_user_id"  # a userID-derived username collides only with itself
                return reason
        return None

    def _create(self, plan: Plan, user: KiiUser, staged: dict | None, hash_line: tuple | None,
                written: dict) -> tuple[str, tuple | None]:
        """A user new to the store: created in Keycloak, inserted in the store."""
        now = self.clock()
        usable = user.has_password and staged is not None and staged["problem"] is None
        state = (MigrationState.pending if usable else MigrationState.reset_required).value
        plan.creates.append((user, to_keycloak(user, self.bmp_only, state=state)))
        plan.inserts.append({
            "kii_user_id": user.kii_user_id, "keycloak_user_id": user.keycloak_id, **_identity(user),
            "password_hash": staged["password_hash"] if usable else None,
            "salt": staged["salt"] if usable else None,
            "hash_fingerprint": staged["fingerprint"] if usable else None, "hash_layered": False,
            "state": state, "failed_attempts": 0, "created_at": now, "updated_at": now, "state_changed_at": now,
            **written})
        if hash_line is None and usable:
            hash_line = ("stored", None)
        return "imported", hash_line

    def _update(self, plan: Plan, user: KiiUser, row: dict, staged: dict | None, hash_line: tuple | None,
                warnings: list[str], written: dict) -> tuple[str, KiiUser, tuple | None]:
        """A user the store holds: a newer profile updates it, a new hash replaces a pending one."""
        now = self.clock()
        change = {}
        profile_changed = user.modified > (row["kii_modified"] or 0)
        if profile_changed:
            if row["username"] and user.username != row["username"]:
                # Keycloak refuses to rename a user (the realm's editUsernameAllowed is off), which would
                # stop the whole run: the first username stays, the rest is updated, the report says so.
                user = replace(user, username=row["username"])
                warnings.append("login_name_changed")
                written = {**written, "import_digest": None}  # the row is not this line's: never unchanged at once
            plan.updates.append((user, to_keycloak(user, self.bmp_only)))
            change.update(_identity(user), **written)
        if staged is not None and hash_line is None:  # a usable hash for a user with a password
            hash_line, hash_change = _new_hash(row, staged, now)
            change.update(hash_change)
        if change.get("state", row["state"]) != row["state"]:
            # The console shows the store's state: Keycloak's copy moves with it.
            state_rep = to_keycloak(user, self.bmp_only, state=change["state"])
            if profile_changed:
                plan.updates[-1] = (user, state_rep)
            else:
                plan.updates.append((user, state_rep))
        if change:
            change.update(kii_user_id=user.kii_user_id, updated_at=now)
            plan.changes.append(change)
        return ("updated" if change else "unchanged"), user, hash_line


def _identity(user: KiiUser) -> dict:
    """The store's copy of the user's identifiers and profile facts."""
    return {"username": user.username, "email": user.email, "phone_number": user.phone_number,
            "disabled": user.disabled, "kii_modified": user.modified}


def _hash_line(user: KiiUser, row: dict | None, staged: dict | None) -> tuple[tuple | None, str | None]:
    """(the hash line's outcome when the user alone decides it, a warning for the profile line)."""
    if staged is not None:
        if not user.has_password:
            return ("failed", "hash_for_user_without_password"), None
        if staged["problem"]:
            return ("failed", staged["problem"]), "unusable_hash"
        return None, None
    if user.has_password and row is None:
        return None, "missing_hash"
    return None, None


def _new_hash(row: dict, staged: dict, now) -> tuple[tuple, dict]:
    """(the hash line's outcome, the store's change) for a usable hash of a user the store holds."""
    state = MigrationState(row["state"])
    if state == MigrationState.migrated:
        return ("kept", None), {}  # they signed in here: their password stays
    if staged["fingerprint"] == row["hash_fingerprint"]:
        return ("unchanged", None), {}
    change = {"password_hash": staged["password_hash"], "salt": staged["salt"],
              "hash_fingerprint": staged["fingerprint"], "hash_layered": False,
              "state": MigrationState.pending.value}
    if state != MigrationState.pending:
        change["state_changed_at"] = now
    return ("stored", None), change
