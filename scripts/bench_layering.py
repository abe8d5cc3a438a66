#!/usr/bin/env python3
"""Measure `identity legacy layer` (argon2id layering) and the sign-in cost it adds.

    .venv/bin/python scripts/bench_layering.py [--rows 1000]

For several argon2id parameter sets of equal OWASP standing, measures in one
run: layering rate with 1 and 2 worker processes, and the median time of one
verification of a layered record (the cost a first sign-in pays). Writes the
table to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hmac
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flask_migrate  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from benchlib import write_section  # noqa: E402

from identity import create_app  # noqa: E402
from identity.db import db  # noqa: E402
from identity.legacy.credentials import LegacySettings  # noqa: E402
from identity.legacy.models import LegacyUser  # noqa: E402
from identity.legacy.layering import layer_all  # noqa: E402

KEY = b"benchmark-hash-key"
PARAMS = [  # (memory KiB, iterations, note): OWASP's equivalent argon2id settings, plus Keycloak's own
    (19456, 2, "OWASP minimum (chosen)"),
    (12288, 3, "OWASP alternative"),
    (7168, 5, "Keycloak's default for its own passwords"),
    (47104, 1, "OWASP first option"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-layering-"))
    app = create_app({"DATABASE_URL": f"sqlite:///{workdir}/bench.db", "LEGACY_HASH_KEY": KEY.decode(),
                      "LEGACY_DEFAULT_SCHEME": "hmac-sha256;encoding=hex", "LOG_LEVEL": "WARNING"})
    originals = [{"kii_user_id": f"u{i:07d}", "password_hash": hmac.new(KEY, f"pw{i}".encode(), "sha256").hexdigest()}
                 for i in range(args.rows)]
    rows = []
    with app.app_context():
        flask_migrate.upgrade()
        db.session.execute(sa.insert(LegacyUser), [{**o, "username": o["kii_user_id"]} for o in originals])
        db.session.commit()
        table = LegacyUser.__table__
        for memory, iterations, note in PARAMS:
            settings = LegacySettings(hash_key=KEY, default_scheme="hmac-sha256;encoding=hex",
                                      layer_time_cost=iterations, layer_memory_kib=memory)
            rates = {}
            for workers in (1, 2):
                with db.engine.begin() as conn:  # back to unlayered
                    conn.execute(table.update().where(table.c.kii_user_id == sa.bindparam("k"))
                                 .values(password_hash=sa.bindparam("h"), hash_layered=False),
                                 [{"k": o["kii_user_id"], "h": o["password_hash"]} for o in originals])
                started = time.perf_counter()
                result = layer_all(db.engine, settings, workers=workers, batch_size=100)
                elapsed = time.perf_counter() - started
                assert result.layered == args.rows and not result.failed
                rates[workers] = args.rows / elapsed
            layered = db.session.execute(sa.select(table.c.password_hash).limit(1)).scalar_one()
            samples = []
            for _ in range(15):
                started = time.perf_counter()
                assert settings.verify("pw0", layered)
                samples.append(time.perf_counter() - started)
            verify_ms = statistics.median(samples) * 1000
            hours = 2_000_000 / rates[2] / 3600
            rows.append(f"| m={memory} KiB, t={iterations}, p=1 | {note} | {rates[1]:.0f} | {rates[2]:.0f} | "
                        f"{rates[2] / rates[1]:.2f} | {verify_ms:.1f} | {hours:.1f} |")
            print(rows[-1], flush=True)
    body = (f"{args.rows} bare `hmac-sha256` records in SQLite, layered by `identity.legacy.layering.layer_all` "
            "(the code behind `identity legacy layer`), batch size 100.\n\n"
            "| argon2id | standing | hashes/s, 1 worker | hashes/s, 2 workers | 2-worker speed-up | "
            "one layered verify (median ms) | 2M records at 2 workers (h) |\n"
            "| --- | --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n")
    write_section("layering", "Legacy hash layering (`identity legacy layer`)", body)


if __name__ == "__main__":
    main()
