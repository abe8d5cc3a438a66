"""The server side of Cognito's SRP (identity/srp) against real clients' own code, no servers.

pycognito's AWSSRP computes A, the key and the PASSWORD_VERIFIER answer with its own methods (its
boto3 client is never called); amazon-cognito-identity-js's authenticateUser and Amplify v6's signIn
gave the known-answer vectors in client_vectors.json (cognito_identity_js_vector.js and
amplify_vector.mjs make them again). The
service's two calls are played here as the coordinator will play them: InitiateAuth seals the
server's half into SECRET_BLOCK, RespondToAuthChallenge opens it and checks the claim.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycognito.aws_srp import AWSSRP, N_HEX, calculate_u

from identity import srp
from tests.used_secrets import remember

POOL_ID = "cn-north-1_china"
POOL = srp.pool_name(POOL_ID)
CLIENT = "app-client-1"
TTL = timedelta(minutes=5)
SKEW = timedelta(minutes=5)
BLOCKS = srp.SecretBlocks("test service secret for secret blocks")
VECTORS = json.loads((Path(__file__).parent / "client_vectors.json").read_text("utf-8"))["vectors"]
PINNED_A = [v for v in VECTORS if "a" in v["input"]]


@dataclass
class Stored:
    """What the service keeps for one user."""
    user_id_for_srp: str
    salt: str
    verifier: str


def enrol(password: str, user_id: str = "6f1c9a3e-2b47-4d8e-9a51-0c7e3b2d4f60") -> Stored:
    salt, verifier = srp.make_verifier(POOL, user_id, password)
    remember(password, verifier)
    return Stored(user_id, salt, verifier)


def client(password: str, username: str = "alice@example.com") -> AWSSRP:
    # A truthy stand-in for the boto3 client: only AWSSRP's math is used, never its network calls.
    return AWSSRP(username=username, password=password, pool_id=POOL_ID, client_id=CLIENT, client=object())


def initiate(user: Stored, auth_parameters: dict, now: datetime, client_id: str = CLIENT) -> dict:
    """InitiateAuth(USER_SRP_AUTH) as the service answers it: the PASSWORD_VERIFIER parameters."""
    srp_a = srp.parse_public_value(auth_parameters["SRP_A"])
    session = srp.ServerSession.start(user.verifier)
    sealed = BLOCKS.seal(session.b, srp_a, user.user_id_for_srp, client_id, now, TTL)
    return {"SRP_B": session.srp_b_hex, "SALT": user.salt, "SECRET_BLOCK": sealed.text,
            "USER_ID_FOR_SRP": user.user_id_for_srp, "USERNAME": user.user_id_for_srp}


def respond(user: Stored, answer: dict, now: datetime, client_id: str = CLIENT) -> srp.OpenedBlock:
    """RespondToAuthChallenge(PASSWORD_VERIFIER): raises the step's typed error, or returns the opened block."""
    block = answer["PASSWORD_CLAIM_SECRET_BLOCK"]
    opened = BLOCKS.open(block, user.user_id_for_srp, client_id, now)
    srp.check_timestamp(answer["TIMESTAMP"], now, SKEW)
    key = srp.ServerSession(user.verifier, opened.b).key(opened.srp_a)
    srp.verify_claim(POOL, user.user_id_for_srp, block, answer["TIMESTAMP"], answer["PASSWORD_CLAIM_SIGNATURE"], key)
    return opened


def sign_in(user: Stored, password: str, now: datetime | None = None) -> tuple[dict, dict]:
    """pycognito's side of one exchange: (its InitiateAuth parameters' answer, its challenge answer)."""
    app = client(password)
    parameters = app.get_auth_params()
    challenge = initiate(user, parameters, now or datetime.now(timezone.utc))
    return challenge, app.process_challenge(challenge, parameters)


def now() -> datetime:
    return datetime.now(timezone.utc)


# --- the group and encodings, as the clients have them

def test_group_and_multiplier_are_the_clients():
    app = client("irrelevant")
    assert srp.N == int(N_HEX, 16) == app.big_n and srp.G == app.val_g == 2
    assert srp.K == app.val_k
    assert srp.pool_name(POOL_ID) == "china"


@pytest.mark.parametrize("value, padded", [(20, "14"), (56, "38"), (236, "00ec"), (200, "00c8"), (0xabc, "0abc"),
                                           (0, "00")])
def test_padding_follows_the_clients_padhex(value, padded):
    # The positive examples of padHex's own documentation (AuthenticationHelper.js), and an odd length.
    assert srp.pad_hex(value) == padded


def test_a_fresh_salt_reads_the_same_to_every_client():
    for _ in range(64):
        salt, verifier = srp.make_verifier(POOL, "u", "pw-salt-check")
        assert srp.pad_hex(int(salt, 16)) == salt  # JavaScript clients parse SALT, pycognito pads the string
        assert int(salt, 16) < 2 ** 128 and verifier == srp.pad_hex(int(verifier, 16))


def test_each_verifier_has_its_own_salt():
    assert srp.make_verifier(POOL, "u", "same password") != srp.make_verifier(POOL, "u", "same password")


# --- pycognito against the server side

def test_the_right_password_verifies():
    user = enrol("Right-Password-1")
    _, answer = sign_in(user, "Right-Password-1")
    opened = respond(user, answer, now())
    assert len(opened.block_id) == 32 and opened.expires_at > now()


def test_the_server_and_pycognito_derive_the_same_key():
    user = enrol("Same-Key-Password")
    app = client("Same-Key-Password")
    session = srp.ServerSession.start(user.verifier)
    client_key = app.get_password_authentication_key(user.user_id_for_srp, "Same-Key-Password", session.srp_b, user.salt)
    assert session.key(app.large_a_value) == client_key
    assert calculate_u(app.large_a_value, session.srp_b) > 0


@pytest.mark.parametrize("salt", ["00f1e2d3c4b5a6978877665544332211ff", "0e1d2c3b4a59687766554433221100ff",
                                  "7f1e2d3c4b5a69788776655443322110", "01"])
def test_every_salt_shape_verifies(salt):
    # A salt with its high bit set (a 00 in front), one of odd length (a 0 in front), one with neither.
    verifier = srp.verifier_for(POOL, "user-salt", "Salt-Shape-Password", salt)
    user = Stored("user-salt", salt, verifier)
    _, answer = sign_in(user, "Salt-Shape-Password")
    respond(user, answer, now())


def test_a_wrong_password_does_not_verify():
    user = enrol("Right-Password-2")
    _, answer = sign_in(user, "Wrong-Password-2")
    with pytest.raises(srp.ClaimMismatch) as refused:
        respond(user, answer, now())
    assert "Password" not in str(refused.value) and user.verifier not in str(refused.value)


def test_a_password_changed_since_initiate_does_not_verify():
    user = enrol("Old-Password-3")
    _, answer = sign_in(user, "Old-Password-3")
    changed = Stored(user.user_id_for_srp, *srp.make_verifier(POOL, user.user_id_for_srp, "New-Password-3"))
    with pytest.raises(srp.ClaimMismatch):
        respond(changed, answer, now())


@settings(max_examples=12)
@given(password=st.text(min_size=1, max_size=40), user_id=st.text(min_size=1, max_size=20))
def test_any_password_and_user_id_verify(password, user_id):
    user = Stored(user_id, *srp.make_verifier(POOL, user_id, password))
    _, answer = sign_in(user, password)
    respond(user, answer, now())


# --- what is refused, each with its typed error

def test_a_tampered_signature_is_refused():
    user = enrol("Right-Password-4")
    _, answer = sign_in(user, "Right-Password-4")
    signature = bytearray(base64.b64decode(answer["PASSWORD_CLAIM_SIGNATURE"]))
    signature[0] ^= 1
    for forged in (base64.b64encode(bytes(signature)).decode(), "", "not base64!", answer["PASSWORD_CLAIM_SIGNATURE"][:-4]):
        with pytest.raises(srp.ClaimMismatch):
            respond(user, {**answer, "PASSWORD_CLAIM_SIGNATURE": forged}, now())


def test_an_altered_secret_block_is_refused():
    user = enrol("Right-Password-5")
    _, answer = sign_in(user, "Right-Password-5")
    raw = bytearray(base64.b64decode(answer["PASSWORD_CLAIM_SECRET_BLOCK"]))
    altered = []
    for position in (0, 5, len(raw) // 2, len(raw) - 1):
        copy = bytearray(raw)
        copy[position] ^= 0x40
        altered.append(base64.b64encode(bytes(copy)).decode())
    altered += [base64.b64encode(bytes(raw[:-1])).decode(), "", "AQ==", "%%%", answer["PASSWORD_CLAIM_SECRET_BLOCK"] + "x"]
    for block in altered:
        with pytest.raises(srp.InvalidSecretBlock):
            respond(user, {**answer, "PASSWORD_CLAIM_SECRET_BLOCK": block}, now())


def test_a_block_from_another_service_secret_is_refused():
    user = enrol("Right-Password-6")
    _, answer = sign_in(user, "Right-Password-6")
    with pytest.raises(srp.InvalidSecretBlock):
        srp.SecretBlocks("another service secret").open(answer["PASSWORD_CLAIM_SECRET_BLOCK"], user.user_id_for_srp,
                                                       CLIENT, now())


def test_a_secret_block_replayed_into_another_exchange_is_refused():
    # The block of a first exchange with the claim of a second: the signature covers the block.
    user = enrol("Right-Password-7")
    _, first = sign_in(user, "Right-Password-7")
    _, second = sign_in(user, "Right-Password-7")
    with pytest.raises(srp.ClaimMismatch):
        respond(user, {**second, "PASSWORD_CLAIM_SECRET_BLOCK": first["PASSWORD_CLAIM_SECRET_BLOCK"]}, now())


def test_a_replayed_answer_presents_the_same_block_id():
    # Single use is the caller's table of used ids: the same answer gives the same id, each exchange its own.
    user = enrol("Right-Password-8")
    _, answer = sign_in(user, "Right-Password-8")
    _, other = sign_in(user, "Right-Password-8")
    first, again, different = respond(user, answer, now()), respond(user, answer, now()), respond(user, other, now())
    assert first.block_id == again.block_id != different.block_id


def test_a_block_issued_to_another_user_or_client_is_refused():
    user = enrol("Right-Password-9")
    other = enrol("Right-Password-9", user_id="another-user")
    _, answer = sign_in(user, "Right-Password-9")
    with pytest.raises(srp.SecretBlockMismatch):
        respond(other, answer, now())
    with pytest.raises(srp.SecretBlockMismatch):
        respond(user, answer, now(), client_id="another-client")


def test_an_expired_block_is_refused():
    user = enrol("Right-Password-10")
    issued = now() - TTL - timedelta(seconds=1)
    _, answer = sign_in(user, "Right-Password-10", now=issued)
    with pytest.raises(srp.ExpiredSecretBlock):
        BLOCKS.open(answer["PASSWORD_CLAIM_SECRET_BLOCK"], user.user_id_for_srp, CLIENT, now())
    assert BLOCKS.open(answer["PASSWORD_CLAIM_SECRET_BLOCK"], user.user_id_for_srp, CLIENT, issued + TTL / 2)


@pytest.mark.parametrize("srp_a", ["0", "00", format(srp.N, "x"), format(2 * srp.N, "x"), format(srp.N + 1, "x"),
                                   "", "xyz", "-5", " 1f", "1" * 2000])
def test_a_public_value_of_zero_or_n_or_garbage_is_refused(srp_a):
    user = enrol("Right-Password-11")
    with pytest.raises(srp.InvalidPublicValue):
        initiate(user, {"SRP_A": srp_a}, now())


def test_the_session_itself_refuses_a_zero_public_value():
    session = srp.ServerSession.start(enrol("Right-Password-12").verifier)
    for srp_a in (0, srp.N, 3 * srp.N):
        with pytest.raises(srp.InvalidPublicValue):
            session.key(srp_a)


def test_a_timestamp_outside_the_tolerance_is_refused():
    user = enrol("Right-Password-13")
    issued = now()
    _, answer = sign_in(user, "Right-Password-13", now=issued)
    for server_clock in (issued + SKEW + timedelta(seconds=5), issued - SKEW - timedelta(seconds=5)):
        with pytest.raises(srp.TimestampOutOfRange):
            srp.check_timestamp(answer["TIMESTAMP"], server_clock, SKEW)
    late = srp.format_timestamp(issued - SKEW - timedelta(seconds=5))
    with pytest.raises(srp.TimestampOutOfRange):
        respond(user, {**answer, "TIMESTAMP": late}, issued)


@pytest.mark.parametrize("text", ["Tue Mar 05 07:08:09 UTC 2024", "Mon Mar 5 07:08:09 UTC 2024",
                                  "Tue Mar 5 7:08:09 UTC 2024", "Tue Mar 5 07:08:09 GMT 2024",
                                  "Tue Mar 5 07:08:09 UTC 2024 ", "tue mar 5 07:08:09 UTC 2024",
                                  "Thu Feb 30 07:08:09 UTC 2024", "Tue Mar 5 24:00:00 UTC 2024",
                                  "2024-03-05T07:08:09Z", "", "Tue Mär 5 07:08:09 UTC 2024"])
def test_a_malformed_timestamp_is_refused(text):
    with pytest.raises(srp.MalformedTimestamp):
        srp.parse_timestamp(text)


def test_a_malformed_timestamp_is_refused_before_the_claim():
    user = enrol("Right-Password-14")
    _, answer = sign_in(user, "Right-Password-14")
    with pytest.raises(srp.MalformedTimestamp):
        respond(user, {**answer, "TIMESTAMP": answer["TIMESTAMP"].replace(" UTC ", " utc ")}, now())


def test_timestamps_read_back_as_written():
    for moment in (datetime(2024, 3, 5, 7, 8, 9, tzinfo=timezone.utc), datetime(2025, 12, 31, 23, 59, 59, tzinfo=timezone.utc),
                   datetime(2024, 2, 29, 0, 0, 0, tzinfo=timezone.utc)):
        text = srp.format_timestamp(moment)
        assert text == AWSSRP.get_cognito_formatted_timestamp(moment)
        assert srp.parse_timestamp(text) == moment


def test_no_secret_in_a_repr():
    session = srp.ServerSession.start(enrol("Right-Password-15").verifier)
    sealed = BLOCKS.seal(session.b, 5, "u", CLIENT, now(), TTL)
    opened = BLOCKS.open(sealed.text, "u", CLIENT, now())
    shown = repr(session) + repr(sealed) + repr(opened) + repr(BLOCKS)
    assert str(session.b) not in shown and format(session.b, "x") not in shown and sealed.text not in shown


# --- known answers from amazon-cognito-identity-js and Amplify v6

def vector_id(vector: dict) -> str:
    return f'{vector["client"]} {vector["input"]["username"]}'


def test_every_client_gave_vectors():
    assert {v["client"].split()[0] for v in VECTORS} == {"amazon-cognito-identity-js", "aws-amplify"}
    assert PINNED_A


@pytest.mark.parametrize("vector", VECTORS, ids=vector_id)
def test_the_javascript_clients_claims_verify(vector):
    given_, made = vector["input"], vector["output"]
    remember(given_["password"])
    pool = srp.pool_name(given_["userPoolId"])
    verifier = srp.verifier_for(pool, given_["userIdForSrp"], given_["password"], given_["salt"])
    session = srp.ServerSession(verifier, int(given_["b"], 16))
    assert session.srp_b_hex == given_["srpB"]
    srp_a = srp.parse_public_value(made["srpA"])
    if "a" in given_:
        assert srp_a == pow(2, int(given_["a"], 16), srp.N)  # the client's A, from its own a
    answer = made["challengeResponses"]
    assert answer["TIMESTAMP"] == srp.format_timestamp(datetime.fromtimestamp(given_["now"] / 1000, timezone.utc))
    assert answer["USERNAME"] == given_["userIdForSrp"] and answer["PASSWORD_CLAIM_SECRET_BLOCK"] == given_["secretBlock"]
    arguments = (answer["PASSWORD_CLAIM_SECRET_BLOCK"], answer["TIMESTAMP"], answer["PASSWORD_CLAIM_SIGNATURE"])
    srp.verify_claim(pool, answer["USERNAME"], *arguments, session.key(srp_a))
    wrong = srp.verifier_for(pool, given_["userIdForSrp"], given_["password"] + "x", given_["salt"])
    with pytest.raises(srp.ClaimMismatch):
        srp.verify_claim(pool, answer["USERNAME"], *arguments, srp.ServerSession(wrong, int(given_["b"], 16)).key(srp_a))


@pytest.mark.parametrize("vector", PINNED_A, ids=vector_id)
def test_pycognito_gives_the_same_claim_as_the_javascript_client(vector):
    given_, made = vector["input"], vector["output"]
    app = AWSSRP(username=given_["username"], password=given_["password"], pool_id=given_["userPoolId"],
                 client_id=given_["clientId"], client=object())
    app.small_a_value = int(given_["a"], 16)
    app.large_a_value = app.calculate_a()
    assert format(app.large_a_value, "x") == made["srpA"]
    key = app.get_password_authentication_key(given_["userIdForSrp"], given_["password"], int(given_["srpB"], 16),
                                              given_["salt"])
    answer = made["challengeResponses"]
    signature = srp.claim_signature(srp.pool_name(given_["userPoolId"]), given_["userIdForSrp"],
                                    base64.b64decode(given_["secretBlock"]), answer["TIMESTAMP"], key)
    assert base64.b64encode(signature).decode() == answer["PASSWORD_CLAIM_SIGNATURE"]
