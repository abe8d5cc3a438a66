#!/usr/bin/env python3
"""Write a realistic Kii export of N users, with every failure case of the spec at a small rate.

    .venv/bin/python scripts/gen_kii_export.py OUT_DIR --users 100000 [--gzip] [--seed 1]
        [--failure-rate 0.002] [--scheme bare|mixed] [--sample-every 100]

Writes into OUT_DIR:
  profiles.jsonl[.gz]   one Kii user object a line (Chinese, Japanese and emoji names,
                        phone-only and email-only users, custom attributes, disabled users)
  hashes.csv[.gz]       userID,hash[,salt]
  deleted.txt           a few userIDs (for a second delivery)
  passwords.csv         loginName/email/phone and password of a sample of users (test data)
  hash-key              the hash-key of the bare hashes (only with --scheme bare)
  manifest.json         what the importer must report: expected outcome and reason of every
                        line that is not a plain success, and the expected totals

Bare hashes are HMAC-SHA256 hex under the hash-key (IDENTITY_LEGACY_DEFAULT_SCHEME
"hmac-sha256;encoding=hex"); --scheme mixed uses self-describing formats only.
"""

from __future__ import annotations

import argparse
import base64
import csv
import gzip
import hashlib
import hmac
import json
import random
import secrets
import sys
import uuid
from collections import Counter
from pathlib import Path

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志强晓红雪梅子涵梓轩一诺欣怡浩然"
JAPANESE = ["佐藤 花子", "鈴木 一郎", "高橋 美咲", "田中 太郎", "伊藤 さくら"]
EMOJI = ["🐼", "🌸", "💪", "🩺", "❤️"]
DEVICES = ["BP-200", "BP-300", "GLU-10", "SCALE-5", "THERMO-2"]
FAILURE_CASES = [
    # (case, source, outcome, reason)
    ("not_json", "profiles", "failed", "not_json"),
    ("not_utf8", "profiles", "failed", "not_utf8"),
    ("line_too_long", "profiles", "failed", "line_too_long"),
    ("missing_user_id", "profiles", "failed", "missing_user_id"),
    ("duplicate_user_id", "profiles", "failed", "duplicate_user_id"),
    ("login_name_case_collision", "profiles", "failed", "login_name_case_collision"),
    ("invalid_email_only", "profiles", "failed", "invalid_email"),
    ("invalid_email_with_login", "profiles", "imported", "invalid_email"),
    ("invalid_phone_only", "profiles", "failed", "invalid_phone"),
    ("missing_hash", "profiles", "imported", "missing_hash"),
    ("unknown_hash_format", "profiles", "imported", "unusable_hash"),
    ("malformed_hash", "profiles", "imported", "unusable_hash"),
    ("hash_for_unknown_user", "hashes", "failed", "hash_for_unknown_user"),
]


def chinese_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def phone(rng: random.Random, local: bool, i: int) -> str:
    digits = f"13{5 + i % 5}{i:08d}"  # unique per user: a random collision would be a false failure
    return digits if local else "+86" + digits


class Writer:
    def __init__(self, out: Path, gz: bool):
        suffix = ".gz" if gz else ""
        opener = (lambda p: gzip.open(p, "wb", compresslevel=3)) if gz else (lambda p: open(p, "wb"))
        self.profiles = opener(out / f"profiles.jsonl{suffix}")
        self.hashes_raw = opener(out / f"hashes.csv{suffix}")
        self.hash_lines = 0
        self.profile_lines = 0
        self.write_hash_row(["userID", "hash", "salt"], header=True)

    def write_profile(self, data: bytes | dict) -> int:
        if isinstance(data, dict):
            data = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        self.profiles.write(data + b"\n")
        self.profile_lines += 1
        return self.profile_lines

    def write_hash_row(self, row, header=False) -> int:
        line = ",".join(csv_quote(v) for v in row) + "\n"
        self.hashes_raw.write(line.encode())
        self.hash_lines += 1
        return self.hash_lines

    def close(self):
        self.profiles.close()
        self.hashes_raw.close()


def csv_quote(value) -> str:
    value = "" if value is None else str(value)
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n') else value


class Hasher:
    def __init__(self, scheme: str, rng: random.Random, key: bytes | None = None):
        self.scheme, self.rng = scheme, rng
        self.key = key or secrets.token_urlsafe(24).encode()

    def hash(self, password: str, i: int) -> tuple[str, str | None]:
        if self.scheme == "bare":
            return hmac.new(self.key, password.encode(), "sha256").hexdigest(), None
        kind = i % 4
        salt = self.rng.randbytes(16)
        b64 = lambda b: base64.b64encode(b).decode().rstrip("=")  # noqa: E731
        if kind == 0:
            raw = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 10000)
            return f"$pbkdf2-sha256$i=10000,l=32${b64(salt)}${b64(raw)}", None
        if kind == 1:
            return "{SSHA}" + base64.b64encode(hashlib.sha1(password.encode() + salt[:4]).digest() + salt[:4]).decode(), None
        if kind == 2:
            raw = hashlib.sha256(salt + password.encode()).digest()
            return f"$sha256$pf={b64(b'{SALT}{PASSWORD}')}${b64(salt)}${b64(raw)}", None
        raw = hmac.new(salt, password.encode(), "sha512").digest()
        return f"$hmac-sha512${b64(raw)}${b64(salt)}", None


DEMO = {"loginName": "demo", "emailAddress": "demo@example.com", "password": "Demo-Pass-2026",
        "displayName": "演示用户 Demo"}


def generate(out: Path, users: int, seed: int = 1, failure_rate: float = 0.002, gz: bool = False,
             scheme: str = "bare", sample_every: int = 100, deleted: int = 5, demo: bool = False,
             first: int = 0, hash_key: bytes | None = None) -> dict:
    """`first`: the number of the first user's names (user0000000, ...): two exports with different
    ranges name no one alike. `hash_key`: the bare hashes' key (default: a new one)."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    writer = Writer(out, gz)
    hasher = Hasher(scheme, rng, hash_key)
    cases, totals = [], Counter()
    samples, user_ids, login_names = [], [], []
    # Which users carry a failure case: evenly spread, each case at least once.
    every = max(1, int(1 / failure_rate)) if failure_rate > 0 else 0
    case_at = {}
    if every:
        for n, position in enumerate(range(every // 2, users, every)):
            case_at[position] = FAILURE_CASES[n % len(FAILURE_CASES)][0]
        for n, (case, *_rest) in enumerate(FAILURE_CASES):  # small exports: still every case once
            if case not in case_at.values():
                case_at[min(users - 1, 20 + n * 3)] = case
    created0 = 1_500_000_000_000

    def expect(source, line, user_id, outcome, reason):
        cases.append({"source": source, "line": line, "userID": user_id, "outcome": outcome, "reason": reason})

    for i in range(users):
        n = first + i
        case = case_at.get(i)
        user_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        kind = rng.random()
        login = f"user{n:07d}" if kind < 0.8 else None
        email = f"u{n}.{rng.randint(0, 999)}@example.com" if (kind < 0.6 or 0.8 <= kind < 0.92) else None
        tel = phone(rng, local=rng.random() < 0.3, i=n) if (0.4 < kind < 0.8 or kind >= 0.92) else None
        if not (login or email or tel):
            login = f"user{n:07d}"
        name = rng.choice([chinese_name(rng), chinese_name(rng), rng.choice(JAPANESE),
                           chinese_name(rng) + rng.choice(EMOJI), f"User {i}"])
        created = created0 + i * 1000
        record = {
            "userID": user_id, "internalUserID": 100000 + i, "loginName": login, "displayName": name,
            "emailAddress": email, "emailAddressVerified": bool(email) and rng.random() < 0.7,
            "phoneNumber": tel, "phoneNumberVerified": bool(tel) and rng.random() < 0.8,
            "country": "CN", "locale": rng.choice(["zh-CN"] * 8 + ["en", "ja"]),
            "_disabled": rng.choice([False] * 48 + [True, "true"]), "_hasPassword": rng.random() > 0.03,
            "_created": created, "_modified": created + rng.randint(0, 10**9),
            "deviceModel": rng.choice(DEVICES), "birthYear": rng.randint(1940, 2010),
            "units": {"weight": rng.choice(["kg", "jin"]), "glucose": "mmol/L"},
        }
        record = {k: v for k, v in record.items() if v is not None}
        password = f"Kii-{rng.randint(10**7, 10**8)}-{i}"
        if demo and i == 0:
            # The documented sample user of `make run` (README): enabled, with a password.
            record.update(loginName=DEMO["loginName"], emailAddress=DEMO["emailAddress"], emailAddressVerified=True,
                          displayName=DEMO["displayName"], _disabled=False, _hasPassword=True)
            password = DEMO["password"]
        hash_row = None
        if record["_hasPassword"]:
            hash_row = [user_id, *hasher.hash(password, i)]

        outcome, reason = "imported", None
        if case == "not_json":
            line = writer.write_profile(b'{"userID": "broken' + str(i).encode())
            expect("profiles", line, None, "failed", "not_json")
            totals["failed"] += 1
            continue
        if case == "not_utf8":
            line = writer.write_profile(b'{"userID": "\xff\xfe' + str(i).encode() + b'"}')
            expect("profiles", line, None, "failed", "not_utf8")
            totals["failed"] += 1
            continue
        if case == "line_too_long":
            record["notes"] = "x" * (300 * 1024)
            line = writer.write_profile(record)
            expect("profiles", line, None, "failed", "line_too_long")
            totals["failed"] += 1
            if hash_row:
                h = writer.write_hash_row(hash_row)
                expect("hashes", h, user_id, "failed", "hash_for_unknown_user")
            continue
        if case == "missing_user_id":
            del record["userID"]
            line = writer.write_profile(record)
            expect("profiles", line, None, "failed", "missing_user_id")
            totals["failed"] += 1
            continue
        if case == "duplicate_user_id" and user_ids:
            record["userID"] = user_id = rng.choice(user_ids)
            record.pop("loginName", None)
            record["emailAddress"] = f"dup{i}@example.com"
            line = writer.write_profile(record)
            expect("profiles", line, user_id, "failed", "duplicate_user_id")
            totals["failed"] += 1
            continue
        if case == "login_name_case_collision" and login_names:
            record["loginName"] = rng.choice(login_names).upper()
            record.pop("emailAddress", None)
            record.pop("phoneNumber", None)
            outcome, reason = "failed", "login_name_case_collision"
        elif case == "invalid_email_only":
            record.pop("loginName", None)
            record.pop("phoneNumber", None)
            record["emailAddress"] = f"not-an-email-{i}"
            outcome, reason = "failed", "invalid_email"
        elif case == "invalid_email_with_login":
            record["loginName"] = login = f"user{n:07d}"
            record["emailAddress"] = f"broken@@{i}"
            reason = "invalid_email"
        elif case == "invalid_phone_only":
            record.pop("loginName", None)
            record.pop("emailAddress", None)
            record["phoneNumber"] = "12345"
            outcome, reason = "failed", "invalid_phone"
        elif case == "missing_hash":
            record["_hasPassword"] = True
            hash_row = None
            reason = "missing_hash"
        elif case in ("unknown_hash_format", "malformed_hash"):
            record["_hasPassword"] = True
            hash_row = [user_id, "$whirlpool$abc" if case == "unknown_hash_format" else "$2b$10$tooshort", None]
            reason = "unusable_hash"
        elif case == "hash_for_unknown_user":
            ghost = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            h = writer.write_hash_row([ghost, *hasher.hash("ghost", i)])
            expect("hashes", h, ghost, "failed", "hash_for_unknown_user")

        line = writer.write_profile(record)
        if outcome == "failed":
            expect("profiles", line, user_id, "failed", reason)
            totals["failed"] += 1
            if hash_row:
                h = writer.write_hash_row(hash_row)
                expect("hashes", h, user_id, "failed", "profile_failed")
            continue
        totals["imported"] += 1
        user_ids.append(user_id)
        if record.get("loginName"):
            login_names.append(record["loginName"])
        if reason:
            expect("profiles", line, user_id, outcome, reason)
        if hash_row:
            h = writer.write_hash_row(hash_row)
            if case in ("unknown_hash_format", "malformed_hash"):
                expect("hashes", h, user_id, "failed", "unknown_hash_format" if case == "unknown_hash_format"
                       else "malformed_hash")
            elif not record["_hasPassword"]:
                expect("hashes", h, user_id, "failed", "hash_for_user_without_password")
        if sample_every and i % sample_every == 0 and record["_hasPassword"] and hash_row \
                and case is None:
            samples.append({"userID": user_id, "loginName": record.get("loginName", ""),
                            "email": record.get("emailAddress", ""), "phone": record.get("phoneNumber", ""),
                            "disabled": str(record["_disabled"]).lower(), "password": password})
    writer.close()
    totals["input"] = writer.profile_lines
    with open(out / "passwords.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["userID", "loginName", "email", "phone", "disabled", "password"])
        w.writeheader()
        w.writerows(samples)
    with open(out / "deleted.txt", "w", encoding="utf-8") as f:
        for user_id in rng.sample(user_ids, min(deleted, len(user_ids))):
            f.write(user_id + "\n")
    if scheme == "bare":
        (out / "hash-key").write_bytes(hasher.key + b"\n")
    manifest = {"users": users, "seed": seed, "scheme": scheme, "totals": dict(totals),
                "hash_lines": writer.hash_lines - 1, "cases": cases}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--failure-rate", type=float, default=0.002)
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--scheme", choices=["bare", "mixed"], default="bare")
    parser.add_argument("--sample-every", type=int, default=100)
    parser.add_argument("--demo", action="store_true", help="make the first user the documented demo user")
    parser.add_argument("--no-passwords", action="store_true", help="do not write passwords.csv")
    args = parser.parse_args()
    manifest = generate(args.out, args.users, args.seed, args.failure_rate, args.gzip, args.scheme,
                        args.sample_every, demo=args.demo)
    if args.no_passwords:
        (args.out / "passwords.csv").unlink()
    print(json.dumps(manifest["totals"]), file=sys.stderr)


if __name__ == "__main__":
    main()
