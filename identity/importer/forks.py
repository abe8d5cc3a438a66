"""Work forked off to other processes: the import's and verify's Python parsing is bound by one core per
process, and each forked worker parses beside the others and the database.

A worker calls a method of the object the pool was opened for, on database connections of its own.
Workers fork when the first job is submitted: submit it before any thread of this process starts, as
a fork copies no other thread.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator

import sqlalchemy as sa

_TARGET: tuple[object, sa.Engine] | None = None  # what the forked workers work for
_DISPOSED_IN = None  # the process that has dropped the pooled connections it inherited


@contextmanager
def forked(target: object, engine: sa.Engine, workers: int) -> Iterator[Callable[..., Future]]:
    """`submit(method name, *args)`: a future of `target.<method>(*args)` run in a forked worker."""
    global _TARGET
    _TARGET = (target, engine)
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            yield lambda method, *args: pool.submit(_call, method, *args)
    finally:
        _TARGET = None


def _call(method: str, *args):
    global _DISPOSED_IN
    target, engine = _TARGET
    if _DISPOSED_IN != os.getpid():
        engine.dispose(close=False)  # the parent's pooled connections stay the parent's
        _DISPOSED_IN = os.getpid()
    return getattr(target, method)(*args)
