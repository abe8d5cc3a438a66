"""A wrong password, a right one and an unverifiable record cost about the same time.

Tolerance: each median within 50% of the wrong-password median (medians of
interleaved runs, so the shared machine's noise hits all three alike). The
real cost gap this guards against is an unknown format answering in
microseconds while a real check takes tens of milliseconds: a 100x ratio.
"""

from __future__ import annotations

import hashlib
import statistics
import time

from identity.legacy import hashes
from identity.legacy.credentials import LegacySettings

TOLERANCE = 0.5
RUNS = 15


def timed(call) -> float:
    started = time.perf_counter()
    try:
        call()
    except hashes.LegacyHashError:
        pass
    return time.perf_counter() - started


def medians(cases: dict) -> dict:
    samples = {name: [] for name in cases}
    for _ in range(RUNS):
        for name, call in cases.items():  # interleaved
            samples[name].append(timed(call))
    return {name: statistics.median(values) for name, values in samples.items()}


def assert_close(result: dict, reference: str) -> None:
    base = result[reference]
    for name, value in result.items():
        assert abs(value - base) <= TOLERANCE * base, f"{name}: {value * 1000:.1f} ms vs {base * 1000:.1f} ms"


def test_layered_record_unknown_wrong_right_cost_the_same():
    settings = LegacySettings(hash_key=b"key", default_scheme="sha256;encoding=hex")
    password = "correct horse"
    legacy = "$sha256$" + hashes.b64encode(hashlib.sha256(password.encode()).digest())
    layered = settings.layer(legacy)
    assert settings.verify(password, layered) is True
    result = medians({
        "wrong": lambda: settings.verify("wrong horse", layered),
        "right": lambda: settings.verify(password, layered),
        "unknown format": lambda: settings.verify(password, "$unknown$" + "x" * 40),
        "malformed": lambda: settings.verify(password, layered[:30]),
    })
    assert_close(result, "wrong")


def test_unlayered_bcrypt_wrong_and_right_cost_the_same():
    import bcrypt

    settings = LegacySettings(hash_key=None, default_scheme=None)
    encoded = bcrypt.hashpw(b"correct horse", bcrypt.gensalt(8)).decode()
    result = medians({
        "wrong": lambda: settings.verify("wrong horse", encoded),
        "right": lambda: settings.verify("correct horse", encoded),
    })
    assert_close(result, "wrong")
