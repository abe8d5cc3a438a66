"""Admission slots stand for work: a request that only waits gives its slot back meanwhile."""

from __future__ import annotations

import threading

import pytest

from identity.admission import Admission, Overloaded


def test_a_waiting_request_lets_another_in_and_resumes_after_it():
    gate = Admission(slots=1, wait_s=0.2)
    inside, done = threading.Event(), threading.Event()

    def other():
        with gate.admit("test"):
            inside.set()
            done.wait(5)

    with gate.admit("test"):
        with pytest.raises(Overloaded):  # the only slot is this one
            with gate.admit("test-other-thread-would-wait"):
                pass
        with gate.idle():
            thread = threading.Thread(target=other)
            thread.start()
            assert inside.wait(5), "the other request got no slot while this one waited"
            done.set()
            thread.join(5)
        # Resumed with the slot again: nobody else gets in now.
        assert not gate.slots.acquire(blocking=False)
    assert gate.slots.acquire(blocking=False)  # and it went back once, not twice
    gate.slots.release()


def test_a_final_wait_gives_the_slot_back_for_good():
    gate = Admission(slots=1, wait_s=0.2)
    with gate.admit("test"):
        with gate.idle(resume=False):
            assert gate.slots.acquire(blocking=False)
            gate.slots.release()
    # Leaving admit after a final wait releases nothing more (a BoundedSemaphore would raise).
    assert gate.slots.acquire(blocking=False)
    gate.slots.release()


def test_idle_outside_admission_changes_nothing():
    gate = Admission(slots=1, wait_s=0.2)
    with gate.idle():
        pass
    assert gate.slots.acquire(blocking=False)
