"""Hostile input: the importer, fed random and corrupted export files, reports and never crashes.

The readers and the record parser are checked as properties (hypothesis, no Keycloak, no
database): whatever the bytes, every line comes back once, as a record or with a reason, and
good lines among the bad ones still come back intact. A few end-to-end runs then put every kind
of damage, mixed with good records, through `identity import-profiles` against the real
Keycloak and store: the command finishes (exit 0, the failures are in the report), every bad
line is in the report under its reason, the good users are imported, and Keycloak holds exactly
the users the store holds.
"""

from __future__ import annotations

import gzip
import hmac
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from identity.db import db
from identity.importer import reader
from identity.importer.models import ImportRecord
from identity.importer.profile import (KEYCLOAK_NAME_MAX, KEYCLOAK_USERNAME_MAX, KEYCLOAK_VALUE_MAX, NON_BMP,
                                       USER_ID_OK, KiiUser, RecordError, keycloak_id, parse_user, to_keycloak,
                                       utf16_len)
from identity.legacy.models import LegacyUser
from tests.importer.conftest import read_report
from tests.secrets_scan import keep

READER_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FILE_REASONS = {"line_too_long", "empty_file", "truncated_gzip"}
PROFILE_LINE_REASONS = FILE_REASONS | {"not_json", "not_utf8"}
HASH_LINE_REASONS = FILE_REASONS | {"not_utf8", "bad_csv_row", "bad_csv_header", "missing_user_id",
                                    "invalid_user_id", "empty_hash"}
DELETED_LINE_REASONS = FILE_REASONS | {"not_utf8", "invalid_user_id"}
RECORD_REASONS = {"missing_user_id", "invalid_user_id", "invalid_login_name", "invalid_email", "invalid_phone",
                  "no_sign_in_identifier", "invalid_field_type", "invalid_custom_attribute",
                  "custom_attributes_too_large"}
BOM = b"\xef\xbb\xbf"
TEN_MB = 10 * 1024 * 1024


# --- inputs ---------------------------------------------------------------------------------------

def good_record(i: int, **extra) -> dict:
    return {"userID": f"fz-{i}", "loginName": f"Fuzz_{i}", "emailAddress": f"fuzz{i}@example.com",
            "phoneNumber": f"+86138{i:08d}", "country": "CN", "displayName": f"用户 {i}", "locale": "zh-CN",
            "_hasPassword": True, "_disabled": False, "_created": 1000, "_modified": 2000 + i,
            "deviceModel": "BP-200", **extra}


def line(record: dict) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode()


def deep(depth: int):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


# Lines no export should carry, and some a damaged one will.
HOSTILE_PROFILE_LINES = [
    b"[1, 2]", b"42", b'"a string"', b"null", b"true", b"{}", b"{", b"}", b"NaN", b"1e400",
    b'{"userID": "fz-s", "loginName": "s", "displayName": "\\ud800"}',  # half a surrogate pair
    b'{"userID": "fz-s", "loginName": "\\udc00x"}',
    b'{"userID": "fz-n\x00", "loginName": "n"}',     # a raw NUL inside a string
    b"\x00" * 40, b"\xff\xfe\xfd", b"\xc3\x28", b"\xed\xa0\x80",  # not UTF-8 (the last: an encoded surrogate)
    b"\x1f\x8b\x08\x00", BOM + b'{"userID": "fz-b"}', b'{"userID": "fz-cr", "loginName": "cr"}\r',
    b'{"userID": "fz-big", "_modified": 1e400}', b'{"userID": "fz-big", "_created": ' + b"9" * 30 + b"}",
    b'{"userID": "' + b"9" * 5000 + b'"}', b'{"userID": ' + b"9" * 5000 + b"}",  # beyond int() digit limits
]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
PROFILE_LINES = st.one_of(
    st.integers(0, 10**6).map(lambda i: line(good_record(i))),
    st.binary(max_size=120),
    st.sampled_from(HOSTILE_PROFILE_LINES),
    st.sampled_from([b"[", b'{"a":', b'{"a":[']).map(lambda s: s * 50_000),  # deeper than any parser recursion
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    # Surrogates, paired or not: json.dumps writes them as \uD8xx escapes, valid JSON.
    st.dictionaries(st.sampled_from(["userID", "loginName", "displayName", "x"]),
                    st.text(st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), max_size=4),
                    max_size=3).map(lambda v: json.dumps({"userID": "fz-1", **v}).encode()),
    st.dictionaries(st.sampled_from(["userID", "loginName", "displayName", "_modified", "x"]), JSON_VALUES,
                    max_size=5).map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
)


def physical_lines(content: bytes) -> list[tuple[int, bytes]]:
    """(number, bytes) of every line the readers must account for: split on LF, blank lines skipped."""
    parts = content.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    return [(n, part) for n, part in enumerate(parts, start=1) if part.strip()]


def as_tuples(lines: list[reader.Line]) -> list[tuple]:
    return [(x.line_no, x.record, x.reason) for x in lines]


def check_shape(lines: list[reader.Line], reasons: set[str]) -> None:
    """One item per line, in order; each a record or a known reason."""
    assert lines, "even an empty file is reported (empty_file)"
    numbers = [x.line_no for x in lines]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    for x in lines:
        if x.reason is None:
            assert x.record is not None
        else:
            assert x.reason in reasons, x.reason


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


# --- readers ----------------------------------------------------------------------------------------

@READER_SETTINGS
@given(lines=st.lists(PROFILE_LINES, max_size=15), crlf=st.booleans(), final_newline=st.booleans(),
       bom=st.booleans(), blank=st.sampled_from([b"", b"   ", b"\t\r"]))
def test_profile_reader_accounts_for_every_line_plain_or_gzip(scratch, lines, crlf, final_newline, bom, blank):
    body = [x + b"\r" if crlf else x for x in lines]
    body = [item for x in body for item in (x, blank)]  # a blank (or whitespace) line after each
    content = (BOM if bom else b"") + b"\n".join(body) + (b"\n" if final_newline else b"")
    assume(not content.startswith(reader.GZIP_MAGIC))  # that is a gzip file: the next tests
    plain = list(reader.read_profiles(write(scratch / "p.jsonl", content)))
    check_shape(plain, PROFILE_LINE_REASONS)

    expected = physical_lines(content)
    if expected:
        assert [x.line_no for x in plain] == [n for n, _ in expected]
    else:
        assert as_tuples(plain) == [(1, None, "empty_file")]
    for x in plain:
        if x.record is not None:
            assert isinstance(x.record, dict)
            json.dumps(x.record, ensure_ascii=False).encode("utf-8")  # text that can be written anywhere
    # Every good record among the garbage comes back as it was.
    records = [x.record for x in plain if x.record is not None]
    for raw in lines:
        if raw.startswith(b'{"userID": "fz-') and b"Fuzz_" in raw:
            assert json.loads(raw) in records

    # The same bytes gzip-compressed read the same (gzip is recognised by content, not by name).
    packed = gzip.compress(content)
    assert as_tuples(reader.read_profiles(write(scratch / "p.txt", packed))) == as_tuples(plain)


@READER_SETTINGS
@given(lines=st.lists(PROFILE_LINES, max_size=12), cut=st.floats(0, 1, exclude_max=True))
def test_truncated_gzip_keeps_what_came_before_and_reports_the_cut(scratch, lines, cut):
    content = b"\n".join(lines) + b"\n"
    assume(not content.startswith(reader.GZIP_MAGIC))
    full = as_tuples(reader.read_profiles(write(scratch / "full.jsonl", content)))
    packed = gzip.compress(content)
    at = 2 + int(cut * (len(packed) - 2))  # at least the magic, never the whole stream
    got = list(reader.read_profiles(write(scratch / "cut.jsonl.gz", packed[:at])))
    check_shape(got, PROFILE_LINE_REASONS)
    assert got[-1].reason == "truncated_gzip"
    assert as_tuples(got[:-1]) == full[:len(got) - 1]


@READER_SETTINGS
@given(garbage=st.binary(max_size=400))
@example(garbage=b"")
@example(garbage=b"\x08\x00\x00\x00\x00\x00\x00\xff" + b"\x00" * 20)  # a plausible header, no deflate data
def test_gzip_of_garbage_and_random_bytes(scratch, garbage):
    for content in (reader.GZIP_MAGIC + garbage, garbage, gzip.compress(garbage)):
        for read, reasons in ((reader.read_profiles, PROFILE_LINE_REASONS), (reader.read_hashes, HASH_LINE_REASONS),
                              (reader.read_deleted, DELETED_LINE_REASONS)):
            got = list(read(write(scratch / "garbage", content)))
            if got or read is not reader.read_hashes:  # a hash file of a header alone has no rows
                check_shape(got, reasons)
        # A gzip stream that is not one is one failed line, whatever comes after the magic.
        got = list(reader.read_profiles(write(scratch / "garbage", reader.GZIP_MAGIC + garbage)))
        assert all(x.record is None for x in got)


@pytest.mark.parametrize("pack", ["plain", "gzip", "gzip-cut-inside-the-long-line"])
def test_a_ten_megabyte_line_is_one_failed_line(scratch, pack):
    long_line = b'{"userID": "fz-long", "loginName": "long", "notes": "' + b"x" * TEN_MB + b'"}'
    content = b"\n".join([line(good_record(1)), long_line, line(good_record(2))]) + b"\n"
    expected = [(1, good_record(1), None), (2, None, "line_too_long"), (3, good_record(2), None)]
    if pack == "plain":
        got = reader.read_profiles(write(scratch / "long.jsonl", content))
    else:
        packed = gzip.compress(content)
        if pack != "gzip":
            packed = packed[:len(packed) // 2]  # the cut falls inside the long line
            expected = [(1, good_record(1), None), (2, None, "line_too_long"), (3, None, "truncated_gzip")]
        got = reader.read_profiles(write(scratch / "long.jsonl.gz", packed))
    assert as_tuples(got) == expected


def test_nesting_deeper_than_the_parser_is_not_json_and_lone_surrogates_are_not_utf8(scratch):
    content = b"\n".join([b"[" * 100_000, b"]" * 100_000, b'{"x":' * 50_000,
                          b'{"userID": "fz-1", "loginName": "a", "displayName": "\\ud83d"}',
                          b'{"userID": "fz-1", "loginName": "a", "k": {"\\udfff": 1}}',
                          b'{"userID": "fz-1", "loginName": "a", "displayName": "\\ud83d\\udc3c"}']) + b"\n"
    got = as_tuples(reader.read_profiles(write(scratch / "deep.jsonl", content)))
    assert [reason for _, _, reason in got] == ["not_json", "not_json", "not_json", "not_utf8", "not_utf8", None]
    assert got[-1][1]["displayName"] == "🐼"  # an escaped pair is a character like any other


HASH_ROWS = st.one_of(
    st.integers(0, 10**6).map(lambda i: f"fz-{i},{'ab' * 32}".encode()),
    st.integers(0, 10**6).map(lambda i: f'"fz-{i}","$pbkdf2-sha256$i=1,l=32$c2FsdA$aGFzaA","salt"'.encode()),
    st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), max_size=12),
             max_size=5)
    .map(lambda fields: ",".join(fields).encode()),
    st.binary(max_size=80),
    st.sampled_from([b'fz-1,"unterminated', b'"fz-1,abc', b'fz-1,"a"b', b"fz-1", b"fz-1,a,b,c", b",", b",,",
                     b"fz-\x00,abc", b"x" * 100 + b",abc", b"fz-1,\xff\xfe", BOM + b"fz-1,abc",
                     b"fz-1,", b" , ", b'"",""']),
    st.integers(100_000, 200_000).map(lambda n: b"fz-1," + b"y" * n),  # huge fields, about csv's limit
)


@READER_SETTINGS
@given(rows=st.lists(HASH_ROWS, max_size=15), bom=st.booleans(), crlf=st.booleans(),
       header=st.sampled_from([b"userID,hash", b"userID,hash,salt", b" userID , hash "]))
def test_hash_reader_accounts_for_every_row(scratch, rows, bom, crlf, header):
    end = b"\r\n" if crlf else b"\n"
    content = (BOM if bom else b"") + header + end + end.join(rows) + (end if rows else b"")
    got = list(reader.read_hashes(write(scratch / "h.csv", content)))
    expected = [n for n, _ in physical_lines(content)][1:]  # the header is no row
    if expected:
        check_shape(got, HASH_LINE_REASONS)
    assert [x.line_no for x in got] == expected
    columns = 3 if header.endswith(b"salt") else 2
    for x in got:
        if x.reason is None:
            user_id, encoded, salt = x.record
            assert USER_ID_OK.fullmatch(user_id) and encoded and encoded == encoded.strip()
            assert salt is None or (columns == 3 and salt)
    for raw in rows:
        if raw.startswith(b"fz-") and raw.endswith(b"ab" * 32) and columns == 2:
            assert (raw.split(b",")[0].decode(), "ab" * 32, None) in [x.record for x in got]
    assert as_tuples(reader.read_hashes(write(scratch / "h.csv.gz", gzip.compress(content)))) == as_tuples(got)


@READER_SETTINGS
@given(content=st.binary(max_size=300) | st.lists(HASH_ROWS, max_size=6).map(b"\n".join))
def test_hash_reader_with_any_header(scratch, content):
    got = list(reader.read_hashes(write(scratch / "h2.csv", content)))
    if got:
        check_shape(got, HASH_LINE_REASONS)
        header_failures = [x for x in got if x.reason == "bad_csv_header"]
        assert header_failures in ([], [got[-1]])  # a bad header ends the file, reported once


@pytest.mark.parametrize("content, expected", [
    (BOM + b"userID,hash\r\nfz-1,abc\r\n", [(2, ("fz-1", "abc", None), None)]),
    (b"userID,hash,salt\nfz-1,abc\n", [(2, None, "bad_csv_row")]),                       # too few columns
    (b"userID,hash\nfz-1,abc,s,t\n", [(2, None, "bad_csv_row")]),                        # too many
    (b'userID,hash\nfz-1,"abc\nfz-2,def\n', [(2, None, "bad_csv_row"), (3, ("fz-2", "def", None), None)]),
    (b'userID,hash\nfz-1,"ab"c\n', [(2, None, "bad_csv_row")]),
    (b"userID,hash\nfz-1," + b"y" * 200_000 + b"\n", [(2, None, "bad_csv_row")]),         # beyond csv's field limit
    (b"userID,hash\n" + b"u" * 65 + b",abc\n", [(2, None, "invalid_user_id")]),
    (b"userID,hash\nfz\x00,abc\n", [(2, None, "invalid_user_id")]),
    (b"userID,password\nfz-1,abc\nfz-2,abc\n", [(1, None, "bad_csv_header")]),
    (b"", [(1, None, "empty_file")]),
    (b"\n \n", [(1, None, "empty_file")]),
])
def test_hash_reader_examples(scratch, content, expected):
    assert as_tuples(reader.read_hashes(write(scratch / "hx.csv", content))) == expected


@READER_SETTINGS
@given(lines=st.lists(st.binary(max_size=80) | st.integers(0, 999).map(lambda i: f"fz-{i}".encode()),
                      max_size=15))
@example(lines=[b"\x00\x00", b"x" * 100, b"fz-1", b"  fz-1\r", b"\xff", b"a b", b"\xe3\x80\x80"])
def test_deleted_reader_yields_user_ids_or_reasons(scratch, lines):
    content = b"\n".join(lines) + b"\n"
    assume(not content.startswith(reader.GZIP_MAGIC))
    got = list(reader.read_deleted(write(scratch / "d.txt", content)))
    check_shape(got, DELETED_LINE_REASONS)
    for x in got:
        if x.reason is None:
            assert x.record == "" or USER_ID_OK.fullmatch(x.record)  # "" (only Unicode spaces): missing_user_id
    for raw in lines:
        if raw.startswith(b"fz-"):
            assert raw.decode() in [x.record for x in got]


# --- one record -------------------------------------------------------------------------------------

def any_or(good):
    return st.one_of(good, JSON_VALUES)


NUMBERS = st.integers() | st.floats() | st.sampled_from([2**63, -(2**63) - 1, 10**30, 1e400, float("nan")])
RECORDS = st.fixed_dictionaries({}, optional={
    "userID": any_or(st.sampled_from(["fz-1", " fz-2 ", "x" * 65, "a b", "ü", "fz-\x00"]) | st.text(max_size=10)),
    "internalUserID": JSON_VALUES,
    "loginName": any_or(st.sampled_from(["Alice", "a" * 255, "🐼" * 128, "İ" * 200, "a\u200db", "ΟΔΟΣ"])
                        | st.text(max_size=20)),
    "displayName": any_or(st.text(max_size=20) | st.sampled_from(["n" * 256, "🐼" * 128, "a\x00b"])),
    "emailAddress": any_or(st.sampled_from(["a@example.com", "🐼@example.com", "测试@例子.中国", "a@@b", " "])
                           | st.text(max_size=20)),
    "emailAddressVerified": any_or(st.sampled_from([True, False, "true", "FALSE "])),
    "phoneNumber": any_or(st.sampled_from(["+8613812345678", "13812345678", "12", "+" + "1" * 300])
                          | st.text(max_size=20)),
    "phoneNumberVerified": any_or(st.booleans()),
    "country": any_or(st.sampled_from(["CN", "cn", "ZZ", "ß"])),
    "locale": any_or(st.sampled_from(["zh-CN", "l" * (KEYCLOAK_VALUE_MAX + 1)]) | st.text(max_size=10)),
    "_disabled": any_or(st.sampled_from([True, "false", "maybe"])),
    "_hasPassword": any_or(st.booleans()),
    "_created": any_or(NUMBERS),
    "_modified": any_or(NUMBERS),
    "_emailAddressPending": JSON_VALUES,
})
CUSTOM = st.dictionaries(
    st.text(max_size=10) | st.sampled_from(["deviceModel", "units", "k" * 65]),
    JSON_VALUES | st.integers(1, 3000).map(deep) | st.sampled_from(["c" * (KEYCLOAK_VALUE_MAX + 1), "🐼" * 1025]),
    max_size=3)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=RECORDS, custom=CUSTOM)
@example(record={"userID": "fz-1", "loginName": "a", "_modified": float("inf")}, custom={})
@example(record={"userID": "fz-1", "loginName": "a"}, custom={"deep": deep(5000)})
def test_a_record_is_a_user_keycloak_takes_or_a_reason(record, custom):
    record = {**custom, **record}
    try:
        user = parse_user(record, "china")
    except RecordError as exc:
        assert exc.reason in RECORD_REASONS
        assert exc.kii_user_id is None or USER_ID_OK.fullmatch(exc.kii_user_id)  # only a real userID is named
        return
    assert isinstance(user, KiiUser) and USER_ID_OK.fullmatch(user.kii_user_id)
    assert set(user.warnings) <= {"invalid_email", "invalid_phone"}
    assert user.login_name or user.email or user.phone_number
    assert -(2**63) < user.modified < 2**63 and (user.created is None or -(2**63) < user.created < 2**63)
    assert utf16_len(user.username) <= KEYCLOAK_USERNAME_MAX
    assert user.email is None or not NON_BMP.search(user.email)
    for bmp_only in (False, True):
        rep = to_keycloak(user, bmp_only=bmp_only)
        json.dumps(rep, ensure_ascii=False).encode("utf-8")  # what goes to Keycloak is text it can read
        assert rep["id"] == keycloak_id("china", user.kii_user_id)
        for name, values in rep["attributes"].items():
            limit = KEYCLOAK_NAME_MAX if name == "name" else KEYCLOAK_VALUE_MAX
            assert all(isinstance(v, str) and utf16_len(v) <= limit for v in values), name


BASE = {"userID": "fz-t", "loginName": "typed", "emailAddress": "typed@example.com", "phoneNumber": "+8613812345678",
        "emailAddressVerified": True, "phoneNumberVerified": True, "country": "CN", "locale": "zh-CN",
        "displayName": "Typed", "_disabled": False, "_hasPassword": True, "_created": 1, "_modified": 2}
# What a wrong type in each field comes to: a failure with its reason, or a warning (the value dropped).
WRONG_TYPES = {
    "userID": "missing_user_id", "loginName": "invalid_login_name", "displayName": "invalid_field_type",
    "emailAddress": "warning:invalid_email", "emailAddressVerified": "invalid_field_type",
    "phoneNumber": "warning:invalid_phone", "phoneNumberVerified": "invalid_field_type",
    "country": "invalid_field_type", "locale": "invalid_field_type", "_disabled": "invalid_field_type",
    "_hasPassword": "invalid_field_type", "_created": "invalid_field_type", "_modified": "invalid_field_type",
}


def wrong_values(field: str) -> list:
    """Values of every JSON type but the field's own."""
    values = [42, 1.5, True, [], {}, ["a"], {"a": 1}, "not-a-bool-or-number"]
    if field in ("_created", "_modified"):
        return [v for v in values if isinstance(v, bool) or not isinstance(v, (int, float))]
    if field.endswith(("Verified", "_disabled", "_hasPassword")):
        return [v for v in values if not isinstance(v, bool)]
    return [v for v in values if not isinstance(v, str)]


@pytest.mark.parametrize("field, value", [(f, v) for f in sorted(WRONG_TYPES) for v in wrong_values(f)])
def test_a_wrong_type_in_any_field_is_reported(field, value):
    expected = WRONG_TYPES[field]
    try:
        user = parse_user({**BASE, field: value}, "china")
    except RecordError as exc:
        assert exc.reason == expected
        return
    assert expected.startswith("warning:") and user.warnings == [expected.split(":")[1]]


# --- end to end ---------------------------------------------------------------------------------------

def invoke(app, *args: str):
    """The real command; whatever happens, it must finish as the docs say: exit 0, failures in the report."""
    result = app.test_cli_runner().invoke(args=["import-profiles", *args])
    failure = (result.exit_code, repr(result.exception), result.output[-3000:])
    assert result.exception is None and result.exit_code == 0, failure
    assert "Traceback" not in result.output
    return result


def ledger(report: dict, source: str) -> dict[int, tuple]:
    """line number -> (outcome, reason, kii_user_id) of the report's run."""
    db.session.rollback()
    rows = db.session.scalars(sa.select(ImportRecord).where(ImportRecord.run_id == report["run"]["run_id"],
                                                            ImportRecord.source == source))
    return {r.line_no: (r.outcome, r.reason, r.kii_user_id) for r in rows}


def keycloak_ids(admin, realm: str) -> set[str]:
    admin.change_current_realm(realm)
    return {u["id"] for u in admin.get_users({"briefRepresentation": False})
            if "kii_user_id" in (u.get("attributes") or {})}


def store_ids() -> set[str]:
    db.session.rollback()
    return set(db.session.scalars(sa.select(LegacyUser.keycloak_user_id)))


def same_in_store(a: str, b: str, column: str) -> bool:
    """Whether the store's unique key on `column` takes `a` and `b` for one value, as its collation
    compares (MariaDB's utf8mb4 collations ignore case, accents and zero-width characters; SQLite does not)."""
    engine = db.engine
    if engine.dialect.name != "mysql":
        return a == b
    with engine.connect() as conn:
        collation = conn.execute(sa.text(
            "SELECT collation_name FROM information_schema.columns WHERE table_schema = DATABASE() "
            "AND table_name = 'legacy_users' AND column_name = :c"), {"c": column}).scalar_one()
        return bool(conn.execute(sa.text(
            f"SELECT CONVERT(:a USING utf8mb4) COLLATE {collation} = CONVERT(:b USING utf8mb4) COLLATE {collation}"),
            {"a": a, "b": b}).scalar())


def assert_report_is_whole(report: dict, output: str, *secrets: str) -> None:
    assert all(report["check"].values()), report["check"]
    for section in (report["failures"], report["hashes"]["failures"], report["deleted"]["failures"]):
        for reason, entry in section.items():
            assert reason and entry["count"] >= 1 and entry["examples"], reason
    text = json.dumps(report, ensure_ascii=False) + output
    for secret in secrets:
        assert secret not in text


def test_every_kind_of_damage_in_one_delivery_is_reported_and_the_good_users_import(
        import_app, import_realm, export, tmp_path, master_admin):
    key = export["hash_key"].encode()
    hashed = {i: hmac.new(key, f"password-{i}".encode(), "sha256").hexdigest() for i in range(1, 12)}
    typed = {"_hasPassword": False}  # no hash row, so only the wrong type speaks
    profiles: list[tuple[bytes, tuple | None]] = []  # (line, (outcome, reason) or None for a blank line)

    def add(raw: bytes, outcome: str | None, reason: str | None = None):
        profiles.append((raw, (outcome, reason) if outcome else None))

    add(BOM + line(good_record(1)), "imported")                   # a byte-order mark before the first record
    add(line(good_record(2)) + b"\r", "imported")                 # CRLF
    add(b"   ", None)
    add(b"\xff\xfe\x00garbage", "failed", "not_utf8")
    add(b'{"userID": "fz-nul\x00", "loginName": "nul"}', "failed", "not_json")
    add(b"\x00" * 64, "failed", "not_json")
    add(b'{"userID": "fz-long", "loginName": "long", "notes": "' + b"x" * TEN_MB + b'"}', "failed", "line_too_long")
    for not_an_object in (b"[1, 2]", b"42", b'"fz-9"', b"null", b"true"):
        add(not_an_object, "failed", "not_json")
    add(b"[" * 100_000, "failed", "not_json")
    add(b'{"userID": "fz-sur", "loginName": "sur", "displayName": "\\ud800"}', "failed", "not_utf8")
    add(line(good_record(3)), "imported")
    add(b"{}", "failed", "missing_user_id")
    add(line({"userID": "fz-only-id"}), "failed", "no_sign_in_identifier")
    add(line({"userID": "u" * 65, "loginName": "u65"}), "failed", "invalid_user_id")
    for n, (field, value) in enumerate([("userID", 42), ("loginName", 42), ("displayName", 42), ("locale", 1.5),
                                        ("country", {}), ("emailAddressVerified", "yes"),
                                        ("phoneNumberVerified", []), ("_disabled", "maybe"), ("_hasPassword", 1),
                                        ("_created", "yesterday"), ("_modified", 10**30)]):
        reason = WRONG_TYPES[field]
        add(line(good_record(100 + n, **{**typed, field: value})), "failed", reason)
    add(line(good_record(120, **typed))[:-1] + b', "_modified": 1e400}', "failed", "invalid_field_type")
    add(line(good_record(121, **typed, emailAddress=42)), "imported", "invalid_email")
    add(line(good_record(122, **typed, phoneNumber=["+8613812345678"])), "imported", "invalid_phone")
    add(line(good_record(123, **typed, internalUserID="x", _emailAddressPending=7)), "imported")  # never imported
    add(line(good_record(124, **typed, **{"bad key!": 1})), "failed", "invalid_custom_attribute")
    # Values Keycloak would take now and refuse at the user's next update.
    add(line(good_record(130, **typed, displayName="n" * (KEYCLOAK_NAME_MAX + 1))), "failed", "invalid_field_type")
    add(line(good_record(131, **typed, locale="l" * (KEYCLOAK_VALUE_MAX + 1))), "failed", "invalid_field_type")
    add(line(good_record(132, **typed, notes="c" * (KEYCLOAK_VALUE_MAX + 1))), "failed", "custom_attributes_too_large")
    add(line(good_record(133, **typed, loginName="🐼" * 128)), "failed", "invalid_login_name")
    add(line(good_record(134, **typed, emailAddress="🐼@example.com")), "imported", "invalid_email")
    # Duplicates: exactly, by case, and as the store's collation sees them.
    add(line(good_record(3, loginName="again")), "failed", "duplicate_user_id")
    add(line(good_record(140, **typed, loginName="FUZZ_1")), "failed", "login_name_case_collision")
    add(line(good_record(141, **typed, emailAddress="FUZZ2@example.com")), "failed", "duplicate_email")
    add(line(good_record(142, **typed, phoneNumber="13800000003")), "failed", "duplicate_phone")
    collations = [("userID", "FZ-3", "fz-3", "kii_user_id", "duplicate_user_id"),
                  ("loginName", "fuzz_1\u200d", "fuzz_1", "username", "login_name_case_collision"),
                  ("loginName", "josé", "jose", "username", "login_name_case_collision"),
                  ("emailAddress", "josé@example.com", "jose@example.com", "email", "duplicate_email")]
    add(line(good_record(150, **typed, loginName="jose", emailAddress="jose@example.com")), "imported")
    for n, (field, value, other, column, reason) in enumerate(collations):
        record = good_record(151 + n, **typed, **{field: value})
        if field == "userID":
            record["loginName"] = "case_of_fz_3"
        collides = same_in_store(value, other, column)
        add(line(record), "failed" if collides else "imported", reason if collides else None)
    for i in range(4, 12):  # fz-9's salt and fz-10's hash are too long: imported, to reset their password
        add(line(good_record(i)), "imported", "unusable_hash" if i in (9, 10) else None)
    add(b"\t", None)
    content = b"\n".join(raw for raw, _ in profiles)  # and no newline after the last line
    (tmp_path / "profiles.jsonl").write_bytes(content)

    rows: list[tuple[bytes, tuple]] = []
    for i in range(1, 9):
        rows.append((f"fz-{i},{hashed[i]},".encode(), ("stored", None)))
    rows += [
        (f"fz-9,{hashed[9]},{'s' * 300}".encode(), ("failed", "malformed_hash")),
        (b"fz-10,$" + b"y" * 100_000 + b",", ("failed", "malformed_hash")),
        (b"fz-11", ("failed", "bad_csv_row")),                                   # one column
        (b"fz-11,a,b,c", ("failed", "bad_csv_row")),
        (b'fz-11,"unterminated', ("failed", "bad_csv_row")),
        (b"fz-11," + b"z" * 200_000 + b",", ("failed", "bad_csv_row")),          # a field past csv's limit
        (b"x" * 100 + b",abc,", ("failed", "invalid_user_id")),
        (b"fz-\x00,abc,", ("failed", "invalid_user_id")),
        (b"fz-11,\xff\xfe,", ("failed", "not_utf8")),
        (b"fz-nohash,,", ("failed", "empty_hash")),
        (f"fz-ghost,{hashed[1]},".encode(), ("failed", "hash_for_unknown_user")),
        (f"fz-102,{hashed[1]},".encode(), ("failed", "profile_failed")),         # its profile had a wrong type
        (f"fz-2,{hashed[2]},".encode(), ("failed", "duplicate_hash_row")),
        (f"fz-11,{hashed[11]},".encode(), ("stored", None)),
    ]
    upper = same_in_store("FZ-1", "fz-1", "kii_user_id")
    rows.append((f"FZ-1,{hashed[1]},".encode(),
                 ("failed", "duplicate_hash_row" if upper else "hash_for_unknown_user")))
    (tmp_path / "hashes.csv").write_bytes(BOM + b"userID,hash,salt\r\n" + b"\r\n".join(r for r, _ in rows) + b"\r\n")

    deleted = [(b"\xff\xfe", ("failed", "not_utf8")), (b"\x00\x00", ("failed", "invalid_user_id")),
               (b"x" * 100, ("failed", "invalid_user_id")), (b"fz-ghost", ("failed", "deleted_unknown_user")),
               (b"", None), (b"fz-5", ("disabled", None)), (b"  fz-5 \r", ("unchanged", None))]
    (tmp_path / "deleted.txt").write_bytes(b"\n".join(raw for raw, _ in deleted) + b"\n")

    report_path = tmp_path / "report.json"
    output = invoke(import_app, "--profiles", str(tmp_path / "profiles.jsonl"), "--hashes",
                    str(tmp_path / "hashes.csv"), "--deleted", str(tmp_path / "deleted.txt"),
                    "--report", str(report_path), "--batch-size", "7", "--workers", "2").output
    report = read_report(report_path)
    md = report_path.with_suffix(".md").read_text(encoding="utf-8")
    assert_report_is_whole(report, output + md, export["hash_key"], *hashed.values(), "y" * 64, "s" * 300)

    # Every line, under its own reason; blank lines are no lines.
    expected_profiles = {n: want for n, (_, want) in enumerate(profiles, start=1) if want}
    got = ledger(report, "profiles")
    assert {n: (o, r) for n, (o, r, _) in got.items()} == expected_profiles
    for n, (outcome, reason, kii_user_id) in got.items():
        assert outcome != "failed" or reason, n
        assert kii_user_id is None or USER_ID_OK.fullmatch(kii_user_id)
    assert report["profiles"]["input"] == len(expected_profiles)
    failed = [r for o, r in expected_profiles.values() if o == "failed"]
    assert {k: v["count"] for k, v in report["failures"].items()} == {r: failed.count(r) for r in set(failed)}
    # Line 2 of the hash file is its first row.
    assert {n - 1: (o, r) for n, (o, r, _) in ledger(report, "hashes").items()} == {
        n: want for n, (_, want) in enumerate(rows, start=1)}
    assert {n: (o, r) for n, (o, r, _) in ledger(report, "deleted").items()} == {
        n: want for n, (_, want) in enumerate(deleted, start=1) if want}

    # The good users are in Keycloak and the store, and nothing else is: a user the store refused
    # (its collation saw a duplicate) is not left behind in Keycloak.
    imported = {r[2] for r in got.values() if r[0] == "imported"}
    assert {f"fz-{i}" for i in range(1, 12)} <= imported
    assert keycloak_ids(master_admin, import_realm.realm) == store_ids() == {
        keycloak_id(import_realm.realm, uid) for uid in imported}
    db.session.rollback()
    assert db.session.get(LegacyUser, "fz-5").disabled
    assert db.session.get(LegacyUser, "fz-1").password_hash == hashed[1]
    assert db.session.get(LegacyUser, "fz-9").password_hash is None  # an unusable hash is not stored
    assert master_admin.get_user(keycloak_id(import_realm.realm, "fz-5"))["enabled"] is False

    # Second delivery: damage arriving as an update of users that exist.
    second = tmp_path / "second.jsonl"
    takes = same_in_store("fuzz_3\u200d", "fuzz_3", "username")
    second.write_bytes(b"\n".join([
        line(good_record(1, displayName="n" * (KEYCLOAK_NAME_MAX + 1), _modified=9000)),  # Keycloak would refuse it
        line(good_record(2, loginName="fuzz_3\u200d", _modified=9000)),  # fz-3's name, to the store's collation
        line(good_record(4, displayName="新名字", _modified=9000)),
        b"\xc3\x28",
        line(good_record(6, loginName="Renamed_6", displayName="改名", _modified=9000)),  # Keycloak renames no one
    ]) + b"\n")
    invoke(import_app, "--profiles", str(second), "--report", str(tmp_path / "second.json"))
    report = read_report(tmp_path / "second.json")
    assert_report_is_whole(report, "")
    second_rows = {n: (o, r) for n, (o, r, _) in ledger(report, "profiles").items()}
    assert second_rows == {1: ("failed", "invalid_field_type"),
                           2: ("failed", "login_name_case_collision") if takes else ("updated", "login_name_changed"),
                           3: ("updated", None), 4: ("failed", "not_utf8"), 5: ("updated", "login_name_changed")}
    master_admin.change_current_realm(import_realm.realm)

    def get(i: int) -> dict:
        return master_admin.get_user(keycloak_id(import_realm.realm, f"fz-{i}"))

    assert get(1)["attributes"]["name"] == ["用户 1"]
    assert get(4)["attributes"]["name"] == ["新名字"]
    assert get(2)["username"] == "fuzz_2"
    assert get(6)["username"] == "fuzz_6" and get(6)["attributes"]["name"] == ["改名"]
    db.session.rollback()
    assert db.session.get(LegacyUser, "fz-6").username == "fuzz_6"


def good_lines(first: int, count: int) -> bytes:
    return b"".join(line(good_record(i, _hasPassword=False)) + b"\n" for i in range(first, first + count))


@pytest.mark.parametrize("damage", ["random-bytes", "truncated-gzip", "gzip-of-garbage", "empty", "one-json-array"])
def test_whole_files_of_damage(import_app, import_realm, tmp_path, master_admin, damage):
    rng = random.Random(damage)
    junk = rng.randbytes(64 * 1024)
    if damage == "random-bytes":
        files = {"profiles": junk, "hashes": rng.randbytes(4096), "deleted": rng.randbytes(4096)}
    elif damage == "truncated-gzip":
        packed = gzip.compress(good_lines(1, 30))
        files = {"profiles": packed[:len(packed) * 2 // 3],
                 "hashes": gzip.compress(b"userID,hash\n" + b"fz-1,abc\n" * 50)[:-10],
                 "deleted": gzip.compress(b"fz-1\nfz-2\n")[:-3]}
    elif damage == "gzip-of-garbage":
        files = {"profiles": reader.GZIP_MAGIC + junk, "hashes": gzip.compress(junk),
                 "deleted": reader.GZIP_MAGIC + b"\x08" + junk[:100]}
    elif damage == "empty":
        files = {"profiles": b"", "hashes": b"", "deleted": b""}
    else:  # the users as one JSON array, not JSON Lines: one line, and far too long
        array = json.dumps([good_record(i) for i in range(2000)]).encode()
        files = {"profiles": array, "hashes": b"userID,hash\n" + array, "deleted": array + b"\nfz-1\n"}
    args = []
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        args += [f"--{name}", str(tmp_path / name)]
    report_path = tmp_path / "report.json"
    if damage == "random-bytes":
        # Once through the installed command itself: its exit code and stderr, as an operator sees them.
        env = {**os.environ, **import_app.config["ENV_FOR_SUBPROCESS"]}
        identity = str(Path(sys.executable).parent / "identity")
        done = subprocess.run([identity, "import-profiles", *args, "--report", str(report_path)], env=env,
                              capture_output=True, timeout=300)
        keep("import-profiles (random bytes)", done.stdout, done.stderr)
        assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr.decode()[-3000:]
        output = done.stdout.decode()
    else:
        output = invoke(import_app, *args, "--report", str(report_path)).output
    report = read_report(report_path)
    assert_report_is_whole(report, output)

    profiles = ledger(report, "profiles")
    for n, (outcome, reason, _) in profiles.items():
        assert outcome != "failed" or reason, n
    assert len(profiles) == report["profiles"]["input"] >= 1
    for source in ("hashes", "deleted"):
        rows = ledger(report, source)
        assert rows and all(reason for outcome, reason, _ in rows.values() if outcome == "failed"), source
    if damage == "truncated-gzip":
        # The records before the cut import; the cut is one failed line.
        readable = [x for x in reader.read_profiles(tmp_path / "profiles") if x.record]
        assert report["profiles"]["imported"] == len(readable) >= 5
        assert report["failures"] == {"truncated_gzip": {"count": 1, "examples": [f"line {max(profiles)}"]}}
        assert sorted(profiles)[:report["profiles"]["imported"]] == list(range(1, report["profiles"]["imported"] + 1))
        assert report["hashes"]["failures"]["truncated_gzip"]["count"] == 1
    elif damage == "one-json-array":
        assert report["failures"] == {"line_too_long": {"count": 1, "examples": ["line 1"]}}
        assert report["hashes"]["failures"] == {"line_too_long": {"count": 1, "examples": ["line 2"]}}
        assert report["deleted"]["failures"]["line_too_long"]["count"] == 1
    elif damage == "empty":
        assert report["failures"] == {"empty_file": {"count": 1, "examples": ["line 1"]}}
        assert report["hashes"]["failures"]["empty_file"]["count"] == 1
        assert report["deleted"]["failures"]["empty_file"]["count"] == 1
    else:
        assert report["profiles"]["imported"] == 0 and report["profiles"]["failed"] == report["profiles"]["input"]
    assert keycloak_ids(master_admin, import_realm.realm) == store_ids()
    assert len(store_ids()) == report["profiles"]["imported"]
