"""Streaming readers for the Kii export: constant memory, gzip or plain, every bad line reported.

Each reader yields one item per input line, either a parsed record or a
failure reason, so the caller can account for every line. File-level
problems (empty file, truncated gzip stream) arrive as one more failed item.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Callable, Iterator

from identity.importer.profile import USER_ID_OK

DONE_SLICE = 5000  # lines per question to `done`
MAX_LINE_BYTES = 256 * 1024   # Kii allows 63 KB of custom attributes; four times that is no user record
GZIP_MAGIC = b"\x1f\x8b"
SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass
class Line:
    line_no: int
    record: object = None       # dict for profiles, tuple for hashes, str for deletions
    reason: str | None = None   # set when the line cannot be used
    data: bytes | None = None   # a profile line's bytes (what tells one delivery's line from another's)


def _open(path: Path):
    with open(path, "rb") as raw:
        magic = raw.read(2)
    # By content, not by name: a .jsonl that is really gzip (or the reverse) still reads.
    # (gzip.open owns its file: a GzipFile over a file object would leave that one open.)
    return gzip.open(path, "rb") if magic == GZIP_MAGIC else open(path, "rb")


def _has_lone_surrogate(value) -> bool:
    """JSON's \\uD800-style escapes can smuggle half a surrogate pair past the UTF-8 check;
    such a string cannot be encoded again (to the database, to Keycloak). Iterative: no depth breaks it."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _raw_lines(path: Path) -> Iterator[tuple[int, bytes | None, str | None]]:
    """(line number, bytes, None) or (line number, None, reason); empty lines are skipped."""
    line_no = used = 0
    stream = _open(path)
    try:
        while True:
            try:
                line = stream.readline(MAX_LINE_BYTES + 1)
            except (EOFError, zlib.error, gzip.BadGzipFile, OSError):
                yield line_no + 1, None, "truncated_gzip"
                return
            if not line:
                break
            line_no += 1
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                # Skip the rest of the over-long line without holding it.
                try:
                    while True:
                        rest = stream.readline(MAX_LINE_BYTES)
                        if not rest or rest.endswith(b"\n"):
                            break
                except (EOFError, zlib.error, gzip.BadGzipFile, OSError):
                    yield line_no, None, "line_too_long"
                    yield line_no + 1, None, "truncated_gzip"
                    return
                used += 1  # a line, if a bad one: a file of nothing else is not also an empty file
                yield line_no, None, "line_too_long"
                continue
            if line.strip():
                used += 1
                yield line_no, line, None
        if used == 0:
            yield 1, None, "empty_file"
    finally:
        stream.close()


def batched(iterable, size: int):
    """Lists of up to `size` items, in order: the readers' lines a batch at a time."""
    iterator = iter(iterable)
    while batch := list(islice(iterator, size)):
        yield batch


def count_lines(path: Path) -> int:
    """The lines a reader will yield for this file (for progress), without parsing them."""
    return sum(1 for _ in _raw_lines(Path(path)))


def read_profiles(path: Path, done: Callable[[int, int], set[int]] | None = None) -> Iterator[Line]:
    """The profile lines; `done(first, last)` names line numbers to pass over unread (a resumed run's,
    or those a set operation recorded), asked a slice of lines at a time."""
    raw = _raw_lines(Path(path))
    slices = batched(raw, DONE_SLICE) if done else [raw]
    for lines in slices:
        skip = done(lines[0][0], lines[-1][0]) if done else ()
        for line_no, data, reason in lines:
            if line_no not in skip:
                yield _profile(line_no, data, reason)


def _profile(line_no: int, data: bytes | None, reason: str | None) -> Line:
    if reason:
        return Line(line_no, reason=reason)
    try:
        # A byte-order mark (Windows tools write one) is not part of the first record.
        text = data.decode("utf-8-sig" if line_no == 1 else "utf-8")
    except UnicodeDecodeError:
        return Line(line_no, reason="not_utf8")
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        return Line(line_no, reason="not_json")
    if not isinstance(record, dict):
        return Line(line_no, reason="not_json")
    if "\\u" in text and _has_lone_surrogate(record):
        return Line(line_no, reason="not_utf8")
    return Line(line_no, record=record, data=data)


def stageable_user_id(line: Line, limit: int) -> str | None:
    """The userID a readable profile line names, when it can key a staged row (a string of 1 to `limit`
    characters, the staging column's); None for a line only parsing can judge."""
    if line.reason:
        return None
    user_id = line.record.get("userID")
    return user_id if isinstance(user_id, str) and 0 < len(user_id) <= limit else None


def read_hashes(path: Path) -> Iterator[Line]:
    """CSV with a header `userID,hash[,salt]`; records are (userID, hash, salt or None)."""
    header = None
    for line_no, data, reason in _raw_lines(Path(path)):
        if reason:
            yield Line(line_no, reason=reason)
            continue
        try:
            text = data.decode("utf-8-sig" if line_no == 1 else "utf-8")
        except UnicodeDecodeError:
            yield Line(line_no, reason="not_utf8")
            continue
        try:
            # strict: an unterminated quote or text after a closing one is a broken row, not a value.
            row = next(csv.reader(io.StringIO(text), strict=True))
        except (csv.Error, StopIteration):
            yield Line(line_no, reason="bad_csv_row")
            continue
        if header is None:
            header = [h.strip() for h in row]
            if header[:2] != ["userID", "hash"] or header[2:] not in ([], ["salt"]):
                yield Line(line_no, reason="bad_csv_header")
                return
            continue
        if len(row) != len(header):
            yield Line(line_no, reason="bad_csv_row")
            continue
        user_id, encoded = row[0].strip(), row[1].strip()
        salt = row[2] if len(row) > 2 and row[2] != "" else None
        if not user_id:
            yield Line(line_no, reason="missing_user_id")
        elif not USER_ID_OK.fullmatch(user_id):
            yield Line(line_no, reason="invalid_user_id")  # no Kii userID looks like this: none to name
        elif not encoded:
            yield Line(line_no, reason="empty_hash", record=(user_id, "", salt))
        else:
            yield Line(line_no, record=(user_id, encoded, salt))


def read_deleted(path: Path) -> Iterator[Line]:
    for line_no, data, reason in _raw_lines(Path(path)):
        if reason:
            yield Line(line_no, reason=reason)
            continue
        try:
            user_id = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            yield Line(line_no, reason="not_utf8")
            continue
        if user_id and not USER_ID_OK.fullmatch(user_id):
            yield Line(line_no, reason="invalid_user_id")  # garbage is not a userID: not one to report either
        else:
            yield Line(line_no, record=user_id)
