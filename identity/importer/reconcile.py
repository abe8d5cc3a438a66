"""What `migration verify` calls a difference, and what the operator does about each: the one place.

A reason is a predicate over one export line joined to its Keycloak user (`k`), its store row (`s`)
and its staged hash (`h`); or, for the users no line of the export names, over the Keycloak users
and store rows alone. Each says whether it needs action (verify exits non-zero), what it means, and
what to do. verify.py only loads the inputs and asks the database these questions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sqlalchemy as sa

from identity.legacy.models import MigrationState

# What verify compares of a Keycloak user, in parts. The import leaves a value the export no longer
# gives as it is (the user may have given one here), so an optional part is compared only where the
# export gives it; "base" always is.
PARTS = ("base", "email", "phone", "locale", "name", "custom")
PENDING, MIGRATED = MigrationState.pending.value, MigrationState.migrated.value


DIGEST = 40  # a part's length: the digest of its values (the database compares digests byte for byte)


def _digest(value: str) -> str:
    return hashlib.sha1(value.encode()).hexdigest()


def _joined(attributes: dict, names) -> str | None:
    present = [f"{name}\x1e" + "\x1f".join(sorted(attributes[name])) for name in names if name in attributes]
    return _digest("\x1d".join(present)) if present else None


def compared(username: str, email: str | None, enabled: bool, email_verified: bool, attributes: dict) -> dict:
    """The parts of a Keycloak user that verify compares: the export's wanted user and Keycloak's answer
    go through this one function."""
    attributes = attributes or {}
    kii = "\x1f".join(sorted(attributes.get("kii_user_id", [])))
    custom = sorted(name for name in attributes if name.startswith("custom."))
    return {"base": _digest(f"{username}\x1f{int(bool(enabled))}{int(bool(email_verified))}\x1f{kii}"),
            "email": email or None, "phone": _joined(attributes, ("phone_number", "phone_number_verified")),
            "locale": _joined(attributes, ("locale",)), "name": _joined(attributes, ("name",)),
            "custom": _joined(attributes, custom)}


@dataclass(frozen=True)
class Reason:
    name: str
    kind: str        # "missing", "different" (a line), "info" (a line, no action), "extra" (no line)
    action: bool
    what: str
    do: str


REASONS = [
    Reason("missing_in_keycloak", "missing", True, "the export lists the user; Keycloak does not have them",
           "run the same delivery's import again (idempotent); if it stays, read the import report's failures"),
    Reason("missing_in_store", "missing", True, "the export lists the user; the legacy store does not have them",
           "run the same delivery's import again"),
    Reason("keycloak_differs", "different", True,
           "Keycloak's username, email, enabled flag or imported attributes differ from the export's",
           "if the user changed it here since go-live, nothing; else run the import again and look at "
           "`identity audit --user`"),
    Reason("store_differs", "different", True, "the store's Keycloak id or disabled flag differs from the export",
           "run the import again; a store row refused by a unique key shows in the import report"),
    Reason("hash_missing_in_store", "different", True,
           "the export has a usable hash for a user who has not signed in here; the store has none",
           "run the import again with the same --hashes"),
    Reason("hash_differs", "different", True, "the store holds another hash than this delivery's",
           "run the import again: a newer delivery's hash replaces a pending one"),
    Reason("deleted_user_has_hash", "different", True, "deleted on Kii, yet the store still holds a hash",
           "run the import again with --deleted"),
    Reason("pending_with_password_here", "different", True,
           "the store would migrate the user from the Kii hash, yet Keycloak holds a password for them",
           "nothing urgent (their next sign-in keeps Keycloak's password); check `identity audit --user`"),
    Reason("migrated_without_password", "different", True,
           "the store says the user migrated, yet Keycloak holds no password for them",
           "the user must reset their password (Forgot password); check `identity audit --user`"),
    Reason("migrated_password_kept", "info", False,
           "signed in here before the cut-off: their password here wins over this delivery's hash", "nothing"),
    Reason("signed_up_here", "extra", False, "a Keycloak user no Kii export held: signed up after go-live",
           "nothing"),
    Reason("deleted_on_kii", "extra", False, "deleted on Kii (this or an earlier delivery) and disabled here",
           "nothing"),
    Reason("deleted_still_enabled", "extra", True, "deleted on Kii, yet enabled in Keycloak",
           "run the import again with this delivery's --deleted"),
    Reason("not_in_this_delivery", "extra", True,
           "a Kii user of an earlier delivery this export does not list, nor its deletions",
           "ask Kii whether the user was deleted (then add them to --deleted) or left out of the export"),
    Reason("extra_in_store", "extra", True, "a store row no line of the export and no Keycloak user matches",
           "look at `identity audit --user`; the import never deletes store rows"),
]
BY_NAME = {reason.name: reason for reason in REASONS}


def line_predicates(e, k, s, h) -> dict[str, sa.ColumnElement]:
    """Each line reason as a condition on the line `e` joined to `k`, `s` and `h` (outer joins)."""
    usable = sa.and_(e.c.has_password, h.c.usable, ~e.c.deleted)
    return {
        "missing_in_keycloak": k.c.id.is_(None),
        "missing_in_store": s.c.kii_user_id.is_(None),
        "keycloak_differs": sa.and_(k.c.id.is_not(None), sa.or_(
            k.c.base != e.c.base, *[sa.and_(e.c[name].is_not(None), e.c[name].is_distinct_from(k.c[name]))
                                     for name in PARTS[1:]])),
        "store_differs": sa.and_(s.c.kii_user_id.is_not(None), sa.or_(
            s.c.keycloak_user_id.is_distinct_from(e.c.keycloak_id), s.c.disabled != e.c.disabled)),
        "hash_missing_in_store": sa.and_(usable, s.c.state != MIGRATED,
                                         sa.or_(s.c.state != PENDING, s.c.password_hash.is_(None))),
        "hash_differs": sa.and_(usable, s.c.state == PENDING, s.c.password_hash.is_not(None),
                                s.c.hash_fingerprint.is_distinct_from(h.c.fingerprint)),
        "deleted_user_has_hash": sa.and_(e.c.deleted, s.c.password_hash.is_not(None)),
        "pending_with_password_here": sa.and_(s.c.state == PENDING, k.c.password),
        "migrated_without_password": sa.and_(s.c.state == MIGRATED, k.c.id.is_not(None), ~k.c.password),
        "migrated_password_kept": sa.and_(usable, s.c.state == MIGRATED),
    }


def render_markdown(result: dict) -> str:
    """The operator's summary beside the JSON: what to act on first, then what is only for the record."""
    t = result["totals"]
    lines = ["# Migration verify", "",
             f"**{'Nothing needs action.' if result['ok'] else 'Action needed: see below.'}**", "",
             "| lines | matched | different | missing | invalid in the export | Kii users not in it | "
             "signed up here |", "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
             f"| {t['input']} | {t['matched']} | {t['different']} | {t['missing']} | {t['invalid']} | "
             f"{t['extra']} | {t['signed_up_here']} |", ""]
    for title, action in (("Needs action", True), ("For the record", False)):
        rows = [(name, entry) for name, entry in result["reasons"].items() if entry["action"] is action]
        lines += [f"## {title}", ""]
        if not rows:
            lines += ["None.", ""]
            continue
        lines += ["| reason | count | what it means | what to do | examples |", "| --- | ---: | --- | --- | --- |"]
        lines += [f"| `{name}` | {entry['count']} | {entry['what']} | {entry['do']} | "
                  f"{', '.join(entry['examples'])} |" for name, entry in rows]
        lines.append("")
    lines += [f"Totals add up: {'yes' if result['add_up'] else 'NO'}.", ""]
    return "\n".join(lines)
