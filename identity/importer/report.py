"""The migration report: aggregates over the run's ledger, as JSON and as Markdown.

Every input line has exactly one ledger row, so the totals add up by
construction, and the report says so (`check`) rather than assuming it.
Examples are Kii userIDs (or line numbers when a line had none): never a
hash, a password or a profile field.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from identity.importer.ledger import Ledger, line_sources
from identity.importer.models import ImportRun
from identity.importer.profile import FLAG_DISABLED, FLAG_EMAIL, FLAG_NO_PASSWORD, FLAG_PHONE
from identity.legacy.store import LegacyStore

EXAMPLES = 5
OUTCOMES = {
    "profiles": ("imported", "updated", "unchanged", "failed"),
    "hashes": ("stored", "unchanged", "kept", "unused", "failed"),
    "deleted": ("disabled", "unchanged", "failed"),
}


def _summed(conn, sources, *columns, where=lambda line: sa.true()) -> Counter:
    """count(*) grouped by `columns`, over each half of the ledger, added up."""
    counts: Counter = Counter()
    for line in sources:
        keys = [line.c[c] for c in columns]
        for *key, count in conn.execute(sa.select(*keys, sa.func.count()).where(where(line)).group_by(*keys)):
            counts[key[0] if len(key) == 1 else tuple(key)] += count
    return counts


def _examples(conn, sources, outcome, reasons: Counter) -> dict:
    """reason -> {count, examples}; `reasons` may hold comma-joined warnings."""
    grouped: dict[str, dict] = {}
    counts: Counter = Counter()
    for reason_text, count in reasons.items():
        for reason in (reason_text or "").split(","):
            if reason:
                counts[reason] += count
    for reason, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        rows = sorted((row for line in sources for row in conn.execute(
            sa.select(line.c.line_no, line.c.kii_user_id)
            .where(line.c.outcome.in_(outcome), line.c.reason.like(f"%{reason}%"))
            .order_by(line.c.line_no).limit(EXAMPLES))), key=lambda row: row.line_no)[:EXAMPLES]
        grouped[reason] = {"count": count,
                           "examples": [r.kii_user_id or f"line {r.line_no}" for r in rows]}
    return grouped


def _ledger(conn, run_id: str, source: str) -> dict:
    sources = line_sources(run_id, source)
    counts = _summed(conn, sources, "outcome")
    totals = {"input": sum(counts.values())}
    totals.update({outcome: counts.get(outcome, 0) for outcome in OUTCOMES[source]})
    unknown = set(counts) - set(OUTCOMES[source])
    totals["add_up"] = not unknown and totals["input"] == sum(totals[o] for o in OUTCOMES[source])
    reasons = _summed(conn, sources, "reason", where=lambda line: line.c.outcome == "failed")
    totals["failures"] = _examples(conn, sources, ["failed"], reasons)
    return totals


def _missing_from_export(ledger: sa.Engine, store: sa.Engine, run_id: str) -> dict:
    """Users in the store that this run's profiles did not list (reported, never deleted)."""
    if ledger is store:  # a real run: its ledger is in the store's database, where one anti-join answers
        count, examples = LegacyStore(store).unlisted(lambda kii_user_id: sa.or_(*[
            sa.exists().where(line.c.kii_user_id == kii_user_id) for line in line_sources(run_id, "profiles")]),
            EXAMPLES)
        return {"count": count, "examples": examples}
    # A dry run's ledger is a scratch file of its own: the store is walked and the ledger asked page by page.
    count, examples, last = 0, [], ""
    while True:
        ids = LegacyStore(store).ids_after(last)
        if not ids:
            break
        last = ids[-1]
        listed = Ledger(ledger, run_id).profile_ids(ids)
        missing = [i for i in ids if i not in listed]
        count += len(missing)
        examples.extend(missing[:EXAMPLES - len(examples)])
    return {"count": count, "examples": examples}


def _fields(conn, run_id: str) -> dict:
    """How many imported lines carried an email, a phone, ... (the flags each line's record holds)."""
    fields: Counter = Counter()
    for line in line_sources(run_id, "profiles"):
        flag = line.c.flags.op("&")
        row = conn.execute(
            sa.select(*[sa.func.coalesce(sa.func.sum(sa.case((flag(bit) != 0, 1), else_=0)), 0).label(name)
                        for name, bit in (("with_email", FLAG_EMAIL), ("with_phone", FLAG_PHONE),
                                          ("disabled", FLAG_DISABLED), ("without_password", FLAG_NO_PASSWORD))])
            .where(line.c.outcome != "failed")).mappings().one()
        fields.update({name: int(value) for name, value in row.items()})
    return dict(fields)


def build_report(ledger: sa.Engine, store: sa.Engine, run_id: str, options) -> dict:
    with ledger.connect() as conn:
        run = conn.execute(sa.select(ImportRun.__table__).where(ImportRun.__table__.c.run_id == run_id)).mappings().one()
        profiles = _ledger(conn, run_id, "profiles")
        lines = line_sources(run_id, "profiles")
        warning_reasons = _summed(conn, lines, "reason",
                                  where=lambda line: sa.and_(line.c.outcome != "failed", line.c.reason.is_not(None)))
        warnings = _examples(conn, lines, ["imported", "updated", "unchanged"], warning_reasons)
        fields = _fields(conn, run_id)
        hashes = _ledger(conn, run_id, "hashes")
        deleted = _ledger(conn, run_id, "deleted")
    states = defaultdict(int)
    for state, disabled, count in LegacyStore(store).state_counts():
        states[getattr(state, "value", state)] += count
        if disabled:
            states["disabled"] += count
    failures = profiles.pop("failures")
    report = {
        "run": {"run_id": run_id, "dry_run": options.dry_run, "arguments": json.loads(run["arguments"]),
                "started_at": run["started_at"].isoformat() + "Z",
                "report_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")},
        "profiles": {k: profiles[k] for k in ("input", *OUTCOMES["profiles"])},
        "failures": failures,
        "warnings": warnings,
        "fields": fields,
        "hashes": hashes,
        "deleted": deleted,
        "missing_from_export": _missing_from_export(ledger, store, run_id),
        "store_after": dict(states),
        "check": {"profiles_add_up": profiles["add_up"], "hashes_add_up": hashes["add_up"],
                  "deleted_add_up": deleted["add_up"]},
    }
    for section in ("hashes", "deleted"):
        report[section].pop("add_up")
    return report


def write_report(report: dict, path: Path) -> tuple[Path, Path]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    markdown = path.with_suffix(".md")
    markdown.write_text(render_markdown(report), encoding="utf-8")
    return path, markdown


def _table(title: str, rows: list[tuple]) -> str:
    lines = [f"| {title} | count |", "| --- | ---: |"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def _reasons(grouped: dict) -> str:
    if not grouped:
        return "None.\n"
    lines = ["| reason | count | examples |", "| --- | ---: | --- |"]
    lines += [f"| `{reason}` | {entry['count']} | {', '.join(map(str, entry['examples']))} |"
              for reason, entry in grouped.items()]
    return "\n".join(lines) + "\n"


def render_markdown(report: dict) -> str:
    run, profiles = report["run"], report["profiles"]
    check = report["check"]
    verdict = "every input line is accounted for" if all(check.values()) else "**TOTALS DO NOT ADD UP**"
    parts = [
        f"# Kii migration report{' (dry run: nothing was written)' if run['dry_run'] else ''}",
        "",
        f"Run `{run['run_id']}`, started {run['started_at']}, reported {run['report_at']}.",
        *(["**This run was already complete: nothing was written now.** The figures below are what it did "
           "when it ran.", ""] if run.get("already_complete") else []),
        f"Profiles: `{run['arguments']['profiles']}`; hashes: `{run['arguments']['hashes']}`; "
        f"deletions: `{run['arguments']['deleted']}`.",
        "",
        f"**{profiles['input']} profile lines: {profiles['imported']} imported + {profiles['updated']} updated + "
        f"{profiles['unchanged']} unchanged + {profiles['failed']} failed** ({verdict}).",
        "",
        "## Profiles", "", _table("outcome", list(profiles.items())), "",
        "### Failures (not imported)", "", _reasons(report["failures"]),
        "### Warnings (imported, with a problem)", "", _reasons(report["warnings"]),
        "### Fields of the imported users", "", _table("field", list(report["fields"].items())), "",
        "## Password hashes", "",
        _table("outcome", [(k, v) for k, v in report["hashes"].items() if k != "failures"]), "",
        "### Failures", "", _reasons(report["hashes"]["failures"]),
        "## Deletions", "",
        _table("outcome", [(k, v) for k, v in report["deleted"].items() if k != "failures"]), "",
        _reasons(report["deleted"]["failures"]),
        "## Users in the store that this export does not list", "",
        f"{report['missing_from_export']['count']} (reported, not deleted); examples: "
        f"{', '.join(report['missing_from_export']['examples']) or 'none'}.", "",
        "## The legacy store after the run", "", _table("state", list(report["store_after"].items())), "",
    ]
    return "\n".join(parts)
