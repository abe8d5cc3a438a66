#!/usr/bin/env python3
"""Write the cut-off delivery that follows a generated first delivery, the way Kii's would look.

    .venv/bin/python scripts/gen_cutoff.py FIRST_DIR OUT_DIR [--seed 2] [--changed 0.01] [--new 0.005]
        [--deleted 0.002] [--rehashed 0.02]

The same users as FIRST_DIR (gen_kii_export.py, bare hashes), with:
  --changed   a share whose email, phone or display name changed (their Kii modification time moves on);
  --new       a share of new users (numbered after the first delivery's), with hashes;
  --deleted   a share deleted on Kii: gone from the profiles and hashes, listed in deleted.txt;
  --rehashed  a share who changed their password on Kii: a new hash;
and the first delivery's bad lines as they were. `rehash` (from Python) forces given userIDs among the
re-hashed, with the new Kii password each gets in manifest.json (the rehearsal's users who also
changed their password here). Writes profiles.jsonl.gz, hashes.csv.gz, deleted.txt, hash-key and
manifest.json (what changed, by userID).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_kii_export import Hasher, Writer, chinese_name, generate, phone  # noqa: E402


def _lines(path: Path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        yield from f


def _profiles(first: Path) -> Path:
    return next(p for p in (first / "profiles.jsonl.gz", first / "profiles.jsonl") if p.exists())


def _hashes(first: Path) -> Path:
    return next(p for p in (first / "hashes.csv.gz", first / "hashes.csv") if p.exists())


def cutoff(first: Path, out: Path, seed: int = 2, changed: float = 0.01, new: float = 0.005,
           deleted: float = 0.002, rehashed: float = 0.02, rehash: tuple[str, ...] = ()) -> dict:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    key = (first / "hash-key").read_bytes().strip()
    hasher = Hasher("bare", rng, key)
    first_manifest = json.loads((first / "manifest.json").read_text(encoding="utf-8"))
    writer = Writer(out, gz=True)
    kinds = {"email": [], "phone": [], "name": []}
    gone, gone_set, kept = [], set(), set()
    for n, raw in enumerate(_lines(_profiles(first))):
        try:
            record = json.loads(raw)
            user_id = record["userID"]
            assert isinstance(user_id, str)
        except (ValueError, KeyError, TypeError, AssertionError):
            writer.write_profile(raw.rstrip(b"\n"))  # a bad line stays bad
            continue
        if user_id in gone_set or user_id not in kept and user_id not in rehash and rng.random() < deleted:
            if user_id not in gone_set:
                gone.append(user_id)
                gone_set.add(user_id)
            continue
        kept.add(user_id)
        if rng.random() < changed:
            kind = rng.choice(list(kinds))
            if kind == "email":
                record["emailAddress"] = f"c{n}.{rng.randint(0, 999)}@example.org"
            elif kind == "phone":
                record["phoneNumber"] = phone(rng, local=False, i=90_000_000 + n)
            else:
                record["displayName"] = chinese_name(rng)
            record["_modified"] = record.get("_modified", 0) + 10**9
            kinds[kind].append(user_id)
        writer.write_profile(record)
    passwords, rehashed_ids = {}, []
    for raw in list(_lines(_hashes(first)))[1:]:
        row = next(csv.reader(io.StringIO(raw.decode("utf-8", "replace"))), None)
        if not row or row[0] in gone_set:
            continue
        if row[0] in rehash or row[0] in kept and rng.random() < rehashed:
            password = f"Kii-new-{rng.randint(10**7, 10**8)}"
            row = [row[0], *hasher.hash(password, 0)]
            rehashed_ids.append(row[0])
            if row[0] in rehash:
                passwords[row[0]] = password
        writer.write_hash_row(row)
    added = _append_new(writer, out, first_manifest["users"], int(first_manifest["users"] * new), seed, key)
    writer.close()
    (out / "deleted.txt").write_text("".join(u + "\n" for u in gone), encoding="utf-8")
    shutil.copy(first / "hash-key", out / "hash-key")
    manifest = {"changed": kinds, "new": added, "deleted": gone, "rehashed": rehashed_ids, "passwords": passwords,
                "profile_lines": writer.profile_lines, "hash_lines": writer.hash_lines - 1}
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return manifest


def _append_new(writer: Writer, out: Path, numbered_from: int, count: int, seed: int, key: bytes) -> list[str]:
    """New users since the first delivery: generated as the first were, numbered after them."""
    if not count:
        return []
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        generate(Path(tmp), count, seed=seed + 1000, failure_rate=0, gz=False, sample_every=0, deleted=0,
                 first=numbered_from, hash_key=key)
        ids = []
        for raw in _lines(Path(tmp) / "profiles.jsonl"):
            writer.write_profile(raw.rstrip(b"\n"))
            ids.append(json.loads(raw)["userID"])
        for raw in list(_lines(Path(tmp) / "hashes.csv"))[1:]:
            writer.write_hash_row(next(csv.reader(io.StringIO(raw.decode()))))
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=2)
    for name, default in (("changed", 0.01), ("new", 0.005), ("deleted", 0.002), ("rehashed", 0.02)):
        parser.add_argument(f"--{name}", type=float, default=default)
    args = parser.parse_args()
    manifest = cutoff(args.first, args.out, args.seed, args.changed, args.new, args.deleted, args.rehashed)
    print(json.dumps({k: len(v) if isinstance(v, list) else v for k, v in manifest.items()
                      if k != "changed"}), file=sys.stderr)


if __name__ == "__main__":
    main()
