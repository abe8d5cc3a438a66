"""Progress for long jobs: a tqdm bar (rate, ETA) on a terminal, a log line every few seconds otherwise."""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger(__name__)


class Progress:
    def __init__(self, total: int | None, description: str, unit: str = "record",
                 interval: float = 5.0, stream=None):
        self.total, self.description, self.unit = total, description, unit
        self.interval, self.done = interval, 0
        self.started = self._last_line = time.monotonic()
        stream = stream or sys.stderr
        self.bar = tqdm(total=total, desc=description, unit=unit, file=stream, dynamic_ncols=True,
                        smoothing=0.1) if stream.isatty() else None

    def update(self, count: int) -> None:
        self.done += count
        if self.bar is not None:
            self.bar.update(count)
            return
        now = time.monotonic()
        if now - self._last_line >= self.interval:
            self._last_line = now
            log.info(self.description, extra=self.figures())

    def figures(self) -> dict:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        figures = {"done": self.done, "total": self.total, "elapsed_s": round(elapsed, 1),
                   "rate_per_s": round(rate, 1)}
        if self.total and rate > 0:
            figures["eta_s"] = round(max(self.total - self.done, 0) / rate, 1)
        return figures

    def close(self) -> dict:
        if self.bar is not None:
            self.bar.close()
        return self.figures()
