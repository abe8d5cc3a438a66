"""`identity import-profiles`: the Kii export into Keycloak and the legacy store.

The run composes its stages (docs/import.md has the why):

1. stage the hash export in the ledger (stage.py: validated, fingerprinted), while a forked worker
   stages a later delivery's profile lines;
2. record the lines a set operation proves unchanged (unchanged.py: a later delivery's bulk);
3. stream the remaining profiles in batches: the planner (plan.py), in file order, decides each line
   (imported, updated, unchanged, failed) from facts about the store, this run's ledger and the
   batches still in flight (facts.py); worker threads write each batch (apply.py): Keycloak first,
   then the store rows and the ledger rows in one transaction;
4. account for every hash line no profile took (stage.py);
5. apply `--deleted` (deletions.py: for good, a later delivery never brings a deleted user back);
6. build the report from the ledger (report.py).

A line is done once its ledger row is committed, and that commit carries its store rows too, so a
run killed anywhere resumes (same arguments, same run id) without redoing or losing a line, and
ends where an uninterrupted run ends. Keycloak writes come first and are idempotent (user ids
derive from the Kii userID; the provider's bulk write leaves a user as wanted unchanged).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import sqlalchemy as sa

from identity.importer import facts, reader
from identity.importer.apply import Applier, Timings
from identity.importer.deletions import Deletions
from identity.importer.forks import forked
from identity.importer.ledger import Ledger
from identity.importer.plan import Plan, Planner
from identity.importer.report import build_report
from identity.importer.stage import HashStage
from identity.importer.unchanged import UnchangedLines
from identity.keycloak.writer import KeycloakWriter
from identity.legacy.credentials import LegacySettings
from identity.legacy.store import LegacyStore
from identity.progress import Progress

log = logging.getLogger(__name__)


@dataclass
class ImportOptions:
    profiles: Path
    hashes: Path | None = None
    deleted: Path | None = None
    report: Path | None = None
    workers: int = 2
    batch_size: int = 500
    dry_run: bool = False
    bmp_only: bool = False  # Keycloak stores its user fields in utf8mb3 (MySQL/MariaDB)
    set_based: bool = True  # unchanged lines by set operations (off: the planner judges every line)

    def run_id(self) -> str:
        """Same files (path, size, modification time) and options: same run, so a rerun resumes it."""
        parts = {"dry_run": self.dry_run}
        for name in ("profiles", "hashes", "deleted"):
            path = getattr(self, name)
            if path is not None:
                stat = Path(path).stat()
                parts[name] = [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]

    def describe(self) -> dict:
        return {"profiles": str(self.profiles), "hashes": str(self.hashes) if self.hashes else None,
                "deleted": str(self.deleted) if self.deleted else None, "dry_run": self.dry_run,
                "bmp_only": self.bmp_only,
                "workers": self.workers, "batch_size": self.batch_size}


class Importer:
    def __init__(self, store: sa.Engine, options: ImportOptions, legacy: LegacySettings,
                 secret_key: str | bytes, writer: KeycloakWriter | None, realm: str):
        if not secret_key:
            raise ValueError("IDENTITY_SECRET_KEY is required to import (it keys the hash fingerprints)")
        secret = secret_key.encode() if isinstance(secret_key, str) else secret_key
        writer = None if options.dry_run else writer
        self.options = options
        self.run_id = options.run_id()
        self.store = LegacyStore(store)
        # A dry run's ledger lives in a scratch database: nothing is written to the store.
        self.ledger = Ledger.scratch(self.run_id) if options.dry_run else Ledger(store, self.run_id)
        self.timings = Timings()
        self.hashes = HashStage(self.ledger, legacy, secret)
        self.planner = Planner(self.run_id, realm, options.bmp_only)
        self.applier = Applier(self.ledger, self.store, writer, options.dry_run, self.timings)
        self.unchanged = UnchangedLines(self.ledger, realm, options.bmp_only)
        self.deletions = Deletions(self.ledger, self.store, writer, realm, options.dry_run)
        self.in_flight: dict[Future, Plan] = {}
        self.at_once = 0  # lines recorded unchanged by the set operation

    def run(self) -> dict:
        options = self.options
        self.ledger.start(json.dumps(options.describe()))
        if self.ledger.finished():
            # The same files and options again, after the run ended: its report, and nothing written.
            log.info("import run already complete", extra={"run_id": self.run_id})
            report = build_report(self.ledger.engine, self.store.engine, self.run_id, options)
            report["run"]["already_complete"] = True
            return report
        set_based = options.set_based and not options.dry_run and self.store.any()
        with forked(self.unchanged, self.store.engine, 1) as submit:
            # The profiles are staged in a worker while this process stages the hashes: both are parsing.
            # (SQLite takes one writer at a time: there they are staged one after the other.)
            beside = set_based and self.store.engine.dialect.name != "sqlite"
            staging = submit("stage", str(options.profiles)) if beside else None
            if options.hashes:
                started = time.perf_counter()
                self.hashes.stage(options.hashes)
                self.timings.add("hashes", started)
            if set_based:
                started = time.perf_counter()
                if staging:
                    staging.result()
                    self.timings.add("profiles_wait", started)  # the profiles staged after the hashes
                started = time.perf_counter()
                self.at_once = self.unchanged.record(options.profiles)
                self.timings.add("unchanged", started)
        self._import_profiles()
        if options.hashes:
            started = time.perf_counter()
            self.hashes.settle(self.store)
            self.timings.add("settle", started)
        if options.deleted:
            started = time.perf_counter()
            self.deletions.run(options.deleted, options.batch_size)
            self.timings.add("deletions", started)
        # The run's staged copies go first: a run ended here reports as an ended run does (above).
        started = time.perf_counter()
        self.unchanged.finish()
        self.ledger.finish()
        self.timings.add("finish", started)
        started = time.perf_counter()
        report = build_report(self.ledger.engine, self.store.engine, self.run_id, options)
        self.timings.add("report", started)
        report["run"]["timings_s"] = self.timings.rounded()
        report["run"]["unchanged_at_once"] = self.at_once
        report["run"]["already_complete"] = False
        return report

    def _import_profiles(self) -> None:
        progress = Progress(reader.count_lines(self.options.profiles), "importing profiles", unit="user")
        workers = max(1, self.options.workers)
        lookup = partial(facts.gather, ledger=self.ledger, store=self.store)

        def done(first: int, last: int) -> set[int]:
            # Lines already recorded (a resumed run's, the unchanged ones) are passed over unread.
            lines = self.ledger.done_lines("profiles", first, last)
            progress.update(len(lines))
            return lines

        with ThreadPoolExecutor(max_workers=workers) as pool:
            for lines in reader.batched(reader.read_profiles(self.options.profiles, done), self.options.batch_size):
                self._reap(block=len(self.in_flight) >= workers, progress=progress)
                started = time.perf_counter()
                plan = self.planner.plan(lines, lookup, list(self.in_flight.values()))
                self.timings.add("plan", started)
                if not plan.records:
                    progress.update(len(lines))
                    continue
                self.in_flight[pool.submit(self.applier.apply, plan)] = plan
            while self.in_flight:
                self._reap(block=True, progress=progress)
        figures = progress.close()
        log.info("profiles done", extra=figures)

    def _reap(self, block: bool, progress: Progress) -> None:
        """Collect finished batches (re-raising their errors); wait for one when `block`."""
        if not self.in_flight:
            return
        done, _ = wait(list(self.in_flight), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in done:
            plan = self.in_flight.pop(future)
            future.result()
            progress.update(sum(1 for r in plan.records if r["source"] == "profiles"))
