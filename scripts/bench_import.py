#!/usr/bin/env python3
"""Benchmark `identity import-profiles` end to end against Keycloak on MariaDB.

    .venv/bin/python scripts/bench_import.py [--users 100000] [--matrix-users 10000]

Starts its own Keycloak (scripts/keycloak.sh, instance "bench", ports 8280/9280)
on a fresh MariaDB database, with a fresh MariaDB legacy store, so the
development Keycloak is untouched (stop it first for quieter figures: make stop).
Needs a local MariaDB server reachable as root over its socket (scripts/ci-mariadb.sh
starts one). Measures, in one run:

1. the full import of --users generated profiles (workers 2, batch 500):
   profiles/s end to end, peak RSS of the importer, where the time went;
2. a matrix on --matrix-users: batch size x workers with partialImport, one
   POST /users per user, and Keycloak's offline `kc.sh import` of the same
   users written as realm files (server stopped);
3. peak RSS on half the users, to show it does not grow with input size.

Writes the tables to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from benchlib import write_section  # noqa: E402
from gen_kii_export import generate  # noqa: E402

HTTP, MGMT = 8280, 9280
IDENTITY = str(ROOT / ".venv" / "bin" / "identity")


def mysql(sql: str) -> None:
    subprocess.run(["mysql", "-e", sql], check=True)


def keycloak(command: str, env: dict) -> None:
    subprocess.run([str(ROOT / "scripts" / "keycloak.sh"), command], env=env, check=True)


class Bench:
    def __init__(self, work: Path):
        self.work = work
        self.db_password = secrets.token_hex(12)
        self.admin_password = secrets.token_urlsafe(18)
        self.client_secret = secrets.token_urlsafe(18)
        self.secret_key = secrets.token_urlsafe(32)
        subprocess.run([str(ROOT / "scripts" / "keycloak.sh"), "stop"], check=True,
                       env={**os.environ, "KEYCLOAK_INSTANCE": "bench", "KEYCLOAK_MGMT_PORT": str(MGMT)})
        mysql(f"DROP DATABASE IF EXISTS keycloak_bench; CREATE DATABASE keycloak_bench CHARACTER SET utf8mb4 "
              f"COLLATE utf8mb4_unicode_ci; CREATE OR REPLACE USER 'bench'@'127.0.0.1' IDENTIFIED BY "
              f"'{self.db_password}'; CREATE OR REPLACE USER 'bench'@'localhost' IDENTIFIED BY "
              f"'{self.db_password}'; GRANT ALL ON `keycloak\\_bench`.* TO 'bench'@'127.0.0.1'; "
              f"GRANT ALL ON `identity\\_bench`.* TO 'bench'@'127.0.0.1'; "
              f"GRANT ALL ON `keycloak\\_bench`.* TO 'bench'@'localhost'; "
              f"GRANT ALL ON `identity\\_bench`.* TO 'bench'@'localhost';")
        self.kc_env = {**os.environ, "KEYCLOAK_INSTANCE": "bench", "KEYCLOAK_HTTP_PORT": str(HTTP),
                       "KEYCLOAK_MGMT_PORT": str(MGMT), "KEYCLOAK_ENV_FILE": "/nonexistent",
                       "KC_DB": "mariadb", "KC_DB_URL": "jdbc:mariadb://127.0.0.1:3306/keycloak_bench",
                       "KC_DB_USERNAME": "bench", "KC_DB_PASSWORD": self.db_password,
                       "KC_BOOTSTRAP_ADMIN_USERNAME": "admin", "KC_BOOTSTRAP_ADMIN_PASSWORD": self.admin_password}

    def start_keycloak(self) -> None:
        keycloak("ensure", self.kc_env)

    def stop_keycloak(self) -> None:
        keycloak("stop", self.kc_env)

    def identity_env(self, realm: str) -> dict:
        return {**os.environ, "IDENTITY_DATABASE_URL":
                f"mysql+pymysql://bench:{self.db_password}@127.0.0.1:3306/identity_bench?charset=utf8mb4",
                "IDENTITY_KEYCLOAK_URL": f"http://127.0.0.1:{HTTP}", "IDENTITY_KEYCLOAK_REALM": realm,
                "IDENTITY_KEYCLOAK_ADMIN_CLIENT_SECRET": self.client_secret,
                "IDENTITY_KEYCLOAK_BOOTSTRAP_USERNAME": "admin",
                "IDENTITY_KEYCLOAK_BOOTSTRAP_PASSWORD": self.admin_password,
                "IDENTITY_SECRET_KEY": self.secret_key, "IDENTITY_LOG_LEVEL": "WARNING",
                "IDENTITY_KEYCLOAK_BMP_ONLY": "true",
                "IDENTITY_LEGACY_DEFAULT_SCHEME": "hmac-sha256;encoding=hex"}

    def fresh(self, realm: str, export: Path) -> dict:
        mysql("DROP DATABASE IF EXISTS identity_bench; CREATE DATABASE identity_bench CHARACTER SET utf8mb4 "
              "COLLATE utf8mb4_unicode_ci;")
        env = self.identity_env(realm)
        env.pop("IDENTITY_LEGACY_HASH_KEY", None)  # the export's own key file, not the shell's
        env["IDENTITY_LEGACY_HASH_KEY_FILE"] = str(export / "hash-key")
        subprocess.run([IDENTITY, "db", "upgrade"], env=env, check=True, capture_output=True)
        subprocess.run([IDENTITY, "keycloak", "bootstrap"], env=env, check=True, capture_output=True)
        return env

    def run_import(self, env: dict, export: Path, workers: int, batch: int, extra=()) -> dict:
        report = self.work / f"report-{time.monotonic_ns()}.json"
        argv = [IDENTITY, "import-profiles", "--profiles", str(export / "profiles.jsonl.gz"),
                "--hashes", str(export / "hashes.csv.gz"), "--report", str(report),
                "--workers", str(workers), "--batch-size", str(batch), *extra]
        started = time.perf_counter()
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        if status != 0:
            raise SystemExit(f"import failed: {process.stderr.read().decode()[-2000:]}")
        data = json.loads(report.read_text())
        return {"elapsed": elapsed, "rss_mb": usage.ru_maxrss / 1024, "report": data,
                "rate": data["profiles"]["input"] / elapsed}


def export_for(work: Path, users: int) -> Path:
    path = work / f"export-{users}"
    if not (path / "manifest.json").exists():
        generate(path, users, seed=users, failure_rate=0.001, gz=True, scheme="bare", sample_every=0)
    return path


def unique_users(export: Path, realm: str, count: int):
    """Keycloak representations of the export's first `count` valid users, without its duplicates
    (which the online importer refuses too)."""
    from identity.importer import reader
    from identity.importer.profile import RecordError, parse_user, to_keycloak

    seen, made = set(), 0
    for line in reader.read_profiles(export / "profiles.jsonl.gz"):
        if made >= count:
            return
        try:
            user = parse_user(line.record, realm)
        except (RecordError, TypeError, AttributeError):
            continue
        keys = {user.kii_user_id, user.username, user.email, user.phone_number} - {None}
        if not keys & seen:
            seen |= keys
            made += 1
            yield to_keycloak(user, bmp_only=True)


def users_api_rate(bench: Bench, export: Path, realm: str, count: int) -> float:
    """One POST /users per user, 4 threads: what the Admin API does without partialImport."""
    from concurrent.futures import ThreadPoolExecutor

    from keycloak import KeycloakAdmin

    admin = KeycloakAdmin(server_url=f"http://127.0.0.1:{HTTP}/", username="admin",
                          password=bench.admin_password, realm_name=realm, user_realm_name="master")
    representations = list(unique_users(export, realm, count))
    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda rep: admin.connection.raw_post(f"admin/realms/{realm}/users",
                                                            data=json.dumps(rep)), representations))
    return len(representations) / (time.perf_counter() - started)


def offline_import_rate(bench: Bench, export: Path, count: int) -> tuple[float, float]:
    """`kc.sh import` of realm files (server stopped): (users/s including start-up, elapsed seconds)."""
    directory = bench.work / "offline"
    directory.mkdir(exist_ok=True)
    for old in directory.glob("*.json"):
        old.unlink()
    realm = "bench-offline"
    (directory / f"{realm}-realm.json").write_text(json.dumps({"realm": realm, "enabled": True}))
    batch, number, total = [], 0, 0
    for representation in unique_users(export, realm, count):
        batch.append(representation)
        total += 1
        if len(batch) == 500:
            (directory / f"{realm}-users-{number}.json").write_text(json.dumps({"realm": realm, "users": batch}))
            batch, number = [], number + 1
    if batch:
        (directory / f"{realm}-users-{number}.json").write_text(json.dumps({"realm": realm, "users": batch}))
    bench.stop_keycloak()
    home = subprocess.run([str(ROOT / "scripts" / "keycloak.sh"), "home"], env=bench.kc_env, capture_output=True,
                          text=True, check=True).stdout.strip()
    env = {**bench.kc_env}
    java = subprocess.run(["bash", "-c", f"source <(sed -n '/^pick_java()/,/^}}/p' {ROOT}/scripts/keycloak.sh); "
                                         "pick_java"], capture_output=True, text=True).stdout.strip()
    env["JAVA_HOME"] = java
    started = time.perf_counter()
    result = subprocess.run([f"{home}/bin/kc.sh", "import", "--dir", str(directory), "--override", "false",
                             "--db", "mariadb", "--db-url", env["KC_DB_URL"], "--db-username", "bench",
                             "--db-password", bench.db_password], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit("kc.sh import failed: " + result.stdout[-2000:] + result.stderr[-2000:])
    # The import's own span, from Keycloak's log: first realm line to "Import finished".
    bench.start_keycloak()
    return total / elapsed, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--matrix-users", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    bench = Bench(work)
    bench.start_keycloak()
    print("keycloak on mariadb ready", flush=True)

    big = export_for(work, args.users)
    env = bench.fresh("bench-full", big)
    full = bench.run_import(env, big, workers=args.workers, batch=args.batch_size)
    print(f"full: {full['rate']:.0f}/s rss {full['rss_mb']:.0f} MB", flush=True)
    half_export = export_for(work, args.users // 2)
    env = bench.fresh("bench-half", half_export)
    half = bench.run_import(env, half_export, workers=args.workers, batch=args.batch_size)
    print(f"half: {half['rate']:.0f}/s rss {half['rss_mb']:.0f} MB", flush=True)

    small = export_for(work, args.matrix_users)
    matrix = []
    for workers, batch in ((1, 100), (2, 50), (2, 100), (2, 200), (2, 500), (2, 1000), (4, 200)):
        env = bench.fresh(f"bench-m{workers}-{batch}", small)
        result = bench.run_import(env, small, workers=workers, batch=batch)
        matrix.append((f"partialImport, batch {batch}, {workers} worker(s)", result["rate"],
                       result["report"]["run"]["timings_s"]))
        print(matrix[-1], flush=True)
    bench.fresh("bench-users-api", small)
    api = users_api_rate(bench, small, "bench-users-api", min(args.matrix_users, 3000))
    matrix.append(("POST /users, one per user, 4 threads (Keycloak only, no store)", api, {}))
    print(matrix[-1], flush=True)
    offline_rate, offline_elapsed = offline_import_rate(bench, small, args.matrix_users)
    matrix.append((f"kc.sh import of realm files, server stopped ({offline_elapsed:.0f} s incl. JVM start)",
                   offline_rate, {}))
    print(matrix[-1], flush=True)
    bench.stop_keycloak()

    timings = full["report"]["run"]["timings_s"]
    body = f"""Keycloak 26.7.3 on MariaDB 10.11 (both on this machine, with the importer), legacy store on
MariaDB, generated bare-HMAC exports (gzip). "End to end" is the whole command: reading and
validating, staging hashes, Keycloak writes, store and ledger writes, the report.

| run | profiles | seconds | profiles/s | importer peak RSS (MB) |
| --- | ---: | ---: | ---: | ---: |
| full, {args.workers} workers, batch {args.batch_size} | {full['report']['profiles']['input']} | {full['elapsed']:.0f} | {full['rate']:.0f} | {full['rss_mb']:.0f} |
| half the users, same settings | {half['report']['profiles']['input']} | {half['elapsed']:.0f} | {half['rate']:.0f} | {half['rss_mb']:.0f} |

Where the full run's time went (seconds, summed over worker threads): {json.dumps(timings)}.

Methods and settings on {args.matrix_users} profiles (fresh realm and store each):

| method | profiles/s | time split (s) |
| --- | ---: | --- |
""" + "\n".join(f"| {name} | {rate:.0f} | {json.dumps(t) if t else ''} |" for name, rate, t in matrix) + "\n"
    write_section("import", "Bulk import (`identity import-profiles`)", body)


if __name__ == "__main__":
    main()
