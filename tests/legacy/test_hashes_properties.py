"""Whatever arrives, the verifier answers True, False or a LegacyHashError, and nothing else."""

from __future__ import annotations

import argon2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identity.legacy import hashes
from identity.legacy.hashes import Context, LegacyHashError, Scheme

PREFIXES = sorted({p for f in hashes.FORMATS.values() for p in f.prefixes} | {"$layered$", "{", "$"})
CONTEXTS = st.sampled_from([
    Context(),
    Context(hash_key=b"k", default_scheme=Scheme.parse("hmac-sha256;encoding=hex")),
    Context(salt="s", default_scheme=Scheme.parse("md5;encoding=base64;template={SALT}{PASSWORD}{KEY}")),
])
PARAMS = st.sampled_from(["ln=1,r=1,p=1", "i=1,l=8", "m=8,t=1,p=1", "v=19", "rounds=1000", "pf=e1BBU1NXT1JEfQ",
                          "ln=99,r=9,p=9", "i=-1,l=0", ""])
B64ISH = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=.$,", max_size=90)
ENCODED = st.one_of(
    st.text(max_size=200),
    st.builds(lambda p, t: p + t, st.sampled_from(PREFIXES), st.text(max_size=120)),
    st.builds(lambda p, a, b, c: f"{p}{a}${b}${c}", st.sampled_from(PREFIXES), PARAMS, B64ISH, B64ISH),
    st.builds(lambda p, a, b, c, d, e: f"{p}{a}${b}${c}${d}${e}", st.sampled_from(PREFIXES), PARAMS, B64ISH, B64ISH,
              B64ISH, B64ISH),
)
PASSWORDS = st.one_of(st.text(max_size=80), st.binary(max_size=80), st.none(), st.integers())
HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def answers_or_typed_error(call) -> None:
    try:
        result = call()
    except LegacyHashError as exc:
        assert isinstance(exc.reason, str) and exc.reason
    else:
        assert result is True or result is False or isinstance(result, str)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(password=PASSWORDS, encoded=ENCODED, ctx=CONTEXTS)
def test_verify_never_raises_anything_else(password, encoded, ctx):
    answers_or_typed_error(lambda: hashes.verify(password, encoded, ctx))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(encoded=ENCODED, ctx=CONTEXTS)
def test_layer_never_raises_anything_else(encoded, ctx):
    answers_or_typed_error(lambda: hashes.layer(encoded, ctx, HASHER))


@settings(max_examples=200, deadline=None)
@given(encoded=st.one_of(st.text(max_size=50), st.binary(max_size=50), st.none(), st.integers()))
def test_non_text_hashes(encoded):
    answers_or_typed_error(lambda: hashes.verify("pw", encoded))
