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
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

MAX_LINE_BYTES = 256 * 1024   # Kii allows 63 KB of custom attributes; four times that is no user record
GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class Line:
    line_no: int
    record: object = None       # dict for profiles, tuple for hashes, str for deletions
    reason: str | None = None   # set when the line cannot be used


def _open(path: Path):
    raw = open(path, "rb")
    magic = raw.read(2)
    raw.seek(0)
    # By content, not by name: a .jsonl that is really gzip (or the reverse) still reads.
    return gzip.GzipFile(fileobj=raw, mode="rb") if magic == GZIP_MAGIC else raw


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
                yield line_no, None, "line_too_long"
                continue
            if line.strip():
                used += 1
                yield line_no, line, None
        if used == 0:
            yield 1, None, "empty_file"
    finally:
        stream.close()


def read_profiles(path: Path) -> Iterator[Line]:
    for line_no, data, reason in _raw_lines(Path(path)):
        if reason:
            yield Line(line_no, reason=reason)
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            yield Line(line_no, reason="not_utf8")
            continue
        try:
            record = json.loads(text)
        except ValueError:
            yield Line(line_no, reason="not_json")
            continue
        if not isinstance(record, dict):
            yield Line(line_no, reason="not_json")
            continue
        yield Line(line_no, record=record)


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
            row = next(csv.reader(io.StringIO(text)))
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
            yield Line(line_no, record=data.decode("utf-8").strip())
        except UnicodeDecodeError:
            yield Line(line_no, reason="not_utf8")
