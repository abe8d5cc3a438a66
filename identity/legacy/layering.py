"""`identity legacy layer`: layer every stored legacy hash with argon2id, in worker processes.

Resumable by construction: rows are taken in primary-key order, each batch is
written in one transaction, and a row is only updated while it is still
unlayered and still holds the hash that was read (``WHERE hash_layered = false
AND password_hash = :old``). A kill loses at most the batches in flight; a
rerun skips what is done, so every row ends up layered exactly once. A user
who signs in meanwhile (hash deleted or replaced) is left alone.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import sqlalchemy as sa

from identity.legacy import hashes
from identity.legacy.credentials import LegacySettings
from identity.legacy.store import LegacyStore
from identity.progress import Progress

log = logging.getLogger(__name__)

_settings: LegacySettings | None = None


def _init_worker(settings: LegacySettings) -> None:
    global _settings
    _settings = settings


def _layer_batch(rows: list[tuple[str, str, str | None]]) -> list[tuple[str, str, str | None, str | None]]:
    """In a worker: (id, old hash, new hash or None, failure reason or None) per row."""
    results = []
    for kii_user_id, encoded, salt in rows:
        try:
            results.append((kii_user_id, encoded, _settings.layer(encoded, salt), None))
        except hashes.LegacyHashError as exc:
            results.append((kii_user_id, encoded, None, f"{exc.code}: {exc.reason}"))
    return results


@dataclass
class LayerResult:
    layered: int = 0
    skipped: int = 0   # changed under us (signed in meanwhile): left alone
    failed: Counter = field(default_factory=Counter)
    figures: dict = field(default_factory=dict)


def layer_all(engine: sa.Engine, settings: LegacySettings, workers: int = 2, batch_size: int = 200) -> LayerResult:
    store = LegacyStore(engine)
    progress = Progress(store.count_unlayered(), "layering legacy hashes", unit="hash")
    result = LayerResult()

    def batches():
        last = ""
        while True:
            rows = store.unlayered_after(last, batch_size)
            if not rows:
                return
            last = rows[-1][0]
            yield rows

    def write(results) -> None:
        done = [{"k_id": k, "old": old, "new": new} for k, old, new, reason in results if new]
        for *_, reason in results:
            if reason:
                result.failed[reason] += 1
        if done:
            updated = store.layer(done)
            result.layered += updated
            result.skipped += len(done) - updated
        progress.update(len(results))

    # A bounded window of batches in flight: memory stays flat however many rows there are.
    in_flight: deque = deque()
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(settings,)) as pool:
        for batch in batches():
            in_flight.append(pool.submit(_layer_batch, batch))
            if len(in_flight) >= 2 * workers:
                write(in_flight.popleft().result())
        while in_flight:
            write(in_flight.popleft().result())
    result.figures = progress.close()
    return result
