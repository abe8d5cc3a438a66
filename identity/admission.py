"""Admission control: a bounded number of requests per process at work, a bounded wait for the rest.

Why: past saturation, a request that waits in a queue for longer than the app's
patience ends as a client timeout, and the app retries into a longer queue.
Refusing early with Cognito's ``TooManyRequestsException`` (which the SDKs back
off from) keeps latency bounded for the requests that are admitted, and keeps
the service from piling more concurrent work on Keycloak than it can serve.
Gunicorn's threads outnumber the slots, so excess requests reach this gate
instead of waiting unseen in a worker's queue.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from identity.metrics import ADMISSION_REFUSALS


class Overloaded(Exception):
    pass


class Admission:
    def __init__(self, slots: int, wait_s: float):
        self.slots = threading.BoundedSemaphore(max(1, slots))
        self.wait_s = wait_s
        self._holding = threading.local()  # does this thread hold a slot now?

    def _acquire(self, kind: str) -> None:
        if not self.slots.acquire(timeout=self.wait_s):
            ADMISSION_REFUSALS.labels(kind).inc()
            raise Overloaded(kind)
        self._holding.slot = True

    @contextmanager
    def admit(self, kind: str):
        self._acquire(kind)
        try:
            yield
        finally:
            if getattr(self._holding, "slot", False):
                self._holding.slot = False
                self.slots.release()

    @contextmanager
    def idle(self, resume: bool = True):
        """The caller's slot goes back while it only waits (for another sign-in of the same user, or
        a refusal's minimum time): a slot stands for work, and a queue of waits must not refuse
        other users. `resume`: take a slot again afterwards, for more work."""
        if not getattr(self._holding, "slot", False):
            yield
            return
        self._holding.slot = False
        self.slots.release()
        yield  # an exception here propagates without taking a slot again
        if resume:
            self._acquire("resume")


def init_app(app) -> None:
    app.extensions["admission"] = Admission(int(app.config["MAX_IN_FLIGHT"]),
                                            int(app.config["ADMISSION_WAIT_MS"]) / 1000)
