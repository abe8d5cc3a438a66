#!/usr/bin/env python3
"""Benchmark `identity import-profiles` end to end against Keycloak on MariaDB (`make bench-import`).

    .venv/bin/python scripts/bench_import.py [--users 200000] [--small-users 100000] [--matrix-users 20000]

Starts its own Keycloak (scripts/keycloak.sh, instance "bench", ports 8280/9280, production mode)
on a fresh MariaDB database, with a fresh MariaDB legacy store, so the development Keycloak is
untouched (stop it first for quieter figures: make stop). Needs a local MariaDB server reachable as
root over its socket (scripts/mariadb.sh starts one). Measures, in one run:

1. the import of --small-users and of --users generated profiles: profiles/s end to end, the rate
   over the first and the last tenth of the lines (does it slow down as the tables grow?), the
   importer's peak RSS, and where the time went;
2. the raw-SQL ceiling: Keycloak's row shape for the same users (one USER_ENTITY row, its
   USER_ATTRIBUTE rows, one role mapping) bulk-inserted into scratch copies of Keycloak's tables,
   one client, and the import's rate as a share of it;
3. workers x batch size on --matrix-users.

Writes the tables, and a reading made from this run's figures, to docs/benchmarks.md.
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

from benchlib import Recording, cpu_seconds, frame_shares, pid_of, write_section  # noqa: E402
from gen_kii_export import generate  # noqa: E402

HTTP, MGMT = 8280, 9280
BUFFER_POOL, LOG_FILE = 4 * 2**30, 2**30
IDENTITY = str(ROOT / ".venv" / "bin" / "identity")


def mysql(sql: str) -> None:
    subprocess.run(["mysql", "-e", sql], check=True)


def keycloak(command: str, env: dict) -> None:
    subprocess.run([str(ROOT / "scripts" / "keycloak.sh"), command], env=env, check=True)


class Bench:
    def __init__(self, work: Path, buffer_pool: int = BUFFER_POOL):
        self.work = work
        self.db_password = secrets.token_hex(12)
        self.admin_password = secrets.token_urlsafe(18)
        self.client_secret = secrets.token_urlsafe(18)
        self.secret_key = secrets.token_urlsafe(32)
        # Production's database settings (docs/scaling.md): with Debian's 128 MB buffer pool the rate falls
        # by half past about 25,000 users, as the tables outgrow it.
        mysql(f"SET GLOBAL innodb_buffer_pool_size = {buffer_pool}; SET GLOBAL innodb_log_file_size = {LOG_FILE};")
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
                       "KC_BOOTSTRAP_ADMIN_USERNAME": "admin", "KC_BOOTSTRAP_ADMIN_PASSWORD": self.admin_password,
                       # Deep enough that a profile's stacks reach the provider's resource.
                       "JAVA_OPTS_APPEND": "-XX:FlightRecorderOptions:stackdepth=512"}

    def start_keycloak(self) -> None:
        keycloak("ensure", self.kc_env)

    def keycloak_pid(self) -> int:
        return int((ROOT / "var" / "keycloak-bench.pid").read_text())

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
        for step in (["db", "upgrade"], ["keycloak", "bootstrap"]):
            done = subprocess.run([IDENTITY, *step], env=env, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"identity {' '.join(step)} failed: {done.stderr[-2000:]}")
        return env

    def run_import(self, env: dict, export: Path, workers: int, batch: int, extra=(), watch: bool = False,
                   profile: bool = False) -> dict:
        report = self.work / f"report-{time.monotonic_ns()}.json"
        argv = [IDENTITY, "import-profiles", "--profiles", str(export / "profiles.jsonl.gz"),
                "--hashes", str(export / "hashes.csv.gz"), "--report", str(report),
                "--workers", str(workers), "--batch-size", str(batch), *extra]
        servers = {"keycloak": self.keycloak_pid(), "mariadb": pid_of("mariadbd")}
        recording = Recording(servers["keycloak"], self.work) if profile else None
        before = {name: cpu_seconds(pid) for name, pid in servers.items()}
        started = time.perf_counter()
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        watcher = Watcher(self.db_password, started) if watch else None
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        cpu = {name: cpu_seconds(pid) - before[name] for name, pid in servers.items()}
        cpu["importer"] = usage.ru_utime + usage.ru_stime
        stacks = recording.stacks() if recording else None
        tenths = watcher.stop() if watcher else None
        if status != 0:
            raise SystemExit(f"import failed: {process.stderr.read().decode()[-2000:]}")
        data = json.loads(report.read_text())
        return {"elapsed": elapsed, "rss_mb": usage.ru_maxrss / 1024, "report": data, "cpu": cpu,
                "rate": data["profiles"]["input"] / elapsed, "tenths": tenths,
                "profile": frame_shares(stacks, PROFILE_FRAMES) if stacks is not None else None}


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


class Watcher:
    """Profile lines committed over time (the ledger's highest line, polled): the rate over the first and last
    tenths. Workers commit their batches a little out of order: the highest line is within a few batches
    of the count."""

    def __init__(self, db_password: str, started: float):
        import threading

        import pymysql

        self.samples: list[tuple[float, int]] = []
        self.started = started
        self.done = threading.Event()
        self.connection = pymysql.connect(host="127.0.0.1", user="bench", password=db_password,
                                          database="identity_bench", autocommit=True)
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        run_id = None
        while not self.done.wait(1.0):
            try:
                with self.connection.cursor() as cursor:
                    if run_id is None:
                        cursor.execute("SELECT run_id FROM import_runs")
                        run_id = cursor.fetchone()[0]
                    # The highest line committed, read from the primary key's end: a COUNT(*) would scan
                    # the growing table every second and slow the run down as it grows.
                    # (Either half of the ledger: a line proved unchanged is recorded in import_unchanged.)
                    cursor.execute("SELECT GREATEST((SELECT COALESCE(MAX(line_no), 0) FROM import_records "
                                   "WHERE run_id = %s AND source = 'profiles'), (SELECT COALESCE(MAX(line_no), 0) "
                                   "FROM import_unchanged WHERE run_id = %s))", (run_id, run_id))
                    self.samples.append((time.perf_counter() - self.started, cursor.fetchone()[0]))
            except Exception:  # the tables and the run appear once the run has started
                continue

    def stop(self) -> dict:
        self.done.set()
        self.thread.join()
        total = max((count for _, count in self.samples), default=0)

        def at(fraction: float) -> float:
            return next(t for t, count in self.samples if count >= fraction * total)

        if total == 0:
            return {}
        # The profiles begin once the hashes are staged: the last moment nothing was committed yet.
        first_start = max((t for t, count in self.samples if count == 0), default=0.0)
        first_end = at(0.1)
        last_start, last_end = at(0.9), at(1.0)
        return {"first": 0.1 * total / max(first_end - first_start, 1e-9),
                "last": 0.1 * total / max(last_end - last_start, 1e-9)}


# Where the provider's time goes: a label, and the method whose presence on a sampled stack counts for it.
PROFILE_FRAMES = {
    "the bulk endpoint, all of it": "LegacyMigrationResource.bulk",
    "reading the batch's JSON": "BulkUsers.parse",
    "the batch's three lookups (ids, usernames, emails)": "BulkUsers.holders",
    "Keycloak's addUser": "JpaUserProvider.addUser",
    "of which the default role's \"has it already?\" query": "UserAdapter.hasDirectRole",
    "setting fields, attributes and state": "BulkUsers.apply",
    "the flush (Hibernate's batched INSERTs)": "EntityManagers.flush",
    "the commit": "DefaultKeycloakTransactionManager.commit",
    "of which the user cache's invalidations": "UserCacheSession.runInvalidations",
    "events published to listeners": "DefaultKeycloakSessionFactory.publish",
}

ROW_SHAPE = {"USER_ENTITY": ("ID", "EMAIL", "EMAIL_CONSTRAINT", "EMAIL_VERIFIED", "ENABLED", "REALM_ID", "USERNAME",
                             "CREATED_TIMESTAMP", "NOT_BEFORE"),
             "USER_ATTRIBUTE": ("NAME", "VALUE", "USER_ID", "ID"),
             "USER_ROLE_MAPPING": ("ROLE_ID", "USER_ID")}


def raw_sql_ceiling(bench: Bench, export: Path, realm: str, count: int) -> float:
    """Users/s for Keycloak's row shape of the same users inserted with plain SQL (executemany, 500 users a
    transaction, one client) into empty scratch copies of Keycloak's tables: what the database alone costs."""
    import uuid

    import pymysql

    connection = pymysql.connect(host="127.0.0.1", user="bench", password=bench.db_password,
                                 database="keycloak_bench")
    with connection.cursor() as cursor:
        for table in ROW_SHAPE:
            cursor.execute(f"DROP TABLE IF EXISTS SCRATCH_{table}")
            cursor.execute(f"CREATE TABLE SCRATCH_{table} LIKE {table}")
        cursor.execute("SELECT ID FROM REALM WHERE NAME = %s", (realm,))
        realm_id = cursor.fetchone()[0]
    users = list(unique_users(export, realm, count))
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for first in range(0, len(users), 500):
            entities, attributes, roles = [], [], []
            for user in users[first:first + 500]:
                email = user.get("email")
                entities.append((user["id"], email, email or user["id"], user.get("emailVerified", False),
                                 user["enabled"], realm_id, user["username"], user.get("createdTimestamp"), 0))
                for name, values in user["attributes"].items():
                    attributes += [(name, value, user["id"], str(uuid.uuid4())) for value in values]
                roles.append(("default-roles", user["id"]))
            for table, rows in (("USER_ENTITY", entities), ("USER_ATTRIBUTE", attributes),
                                ("USER_ROLE_MAPPING", roles)):
                columns = ROW_SHAPE[table]
                cursor.executemany(f"INSERT INTO SCRATCH_{table} ({', '.join(columns)}) VALUES "
                                   f"({', '.join(['%s'] * len(columns))})", rows)
            connection.commit()
    rate = len(users) / (time.perf_counter() - started)
    with connection.cursor() as cursor:
        for table in ROW_SHAPE:
            cursor.execute(f"DROP TABLE SCRATCH_{table}")
    connection.close()
    return rate


def share(timings: dict, name: str) -> float:
    total = sum(timings.values())
    return timings.get(name, 0) / total if total else 0.0


def cpu_line(run: dict) -> str:
    users, cores = run["report"]["profiles"]["input"], os.cpu_count()
    per_user = {name: seconds * 1000 / users for name, seconds in run["cpu"].items()}
    total = sum(per_user.values())
    busy = sum(run["cpu"].values()) / (run["elapsed"] * cores)
    return (f"- **CPU per user** (the {users:,}-user run, each process's user and system time): the importer "
            f"{per_user['importer']:.2f} ms, Keycloak {per_user['keycloak']:.2f} ms, MariaDB "
            f"{per_user['mariadb']:.2f} ms, {total:.2f} ms in all. The {cores} cores were {busy:.0%} busy; with "
            f"all of them busy, {total:.2f} ms a user allows at most {cores * 1000 / total:,.0f} users/s.")


def profile_line(run: dict) -> str:
    shares = run["profile"]
    parts = "; ".join(f"{label} {share:.0%}" for label, share in shares.items())
    return (f"- **Keycloak's profile** (Java Flight Recorder over the {run['report']['profiles']['input']:,}-user "
            f"run; the share of Keycloak's CPU samples with each on the stack): {parts}.")


def reading(small: dict, big: dict, ceiling: float, matrix: list, workers: int, batch: int) -> str:
    """The figures' reading, made from them."""
    n_small, n_big = small["report"]["profiles"]["input"], big["report"]["profiles"]["input"]
    first, last = big["tenths"]["first"], big["tenths"]["last"]
    drift = last / first - 1
    timings = big["report"]["run"]["timings_s"]
    best = max(matrix, key=lambda m: m[1])
    projected = 2_000_000 / big["rate"] / 60
    lines = [
        f"- **Rate**: {big['rate']:,.0f} profiles/s end to end over {n_big:,} users and {small['rate']:,.0f}/s over "
        f"{n_small:,} ({workers} workers, batch {batch}); the target of 1,500/s is "
        f"{'met' if big['rate'] >= 1500 else '**not met**'}. At this rate two million users take "
        f"{projected:.0f} minutes.",
        f"- **No slow-down as the tables grow**: over the {n_big:,}-user run the last tenth of the lines ran at "
        f"{last:,.0f}/s and the first tenth at {first:,.0f}/s ({drift:+.0%}; the limit is 15%: "
        f"{'within' if abs(drift) <= 0.15 else '**outside**'}).",
        f"- **Memory**: the importer's peak RSS was {small['rss_mb']:.0f} MB at {n_small:,} users and "
        f"{big['rss_mb']:.0f} MB at {n_big:,} ({big['rss_mb'] / small['rss_mb']:.2f}x).",
        f"- **Against the database's own pace**: plain SQL inserts of Keycloak's row shape for the same users "
        f"ran at {ceiling:,.0f} users/s; the import reaches {big['rate'] / ceiling:.0%} of that.",
        f"- **Where the time went** (the {n_big:,}-user run; Keycloak and the store summed over the worker "
        f"threads, planning on the main thread): Keycloak {share(timings, 'keycloak'):.0%}, reading and planning "
        f"{share(timings, 'plan'):.0%}, the store and ledger {share(timings, 'store'):.0%}. The main thread "
        f"planned for {timings.get('plan', 0):.0f} s of the run's {big['elapsed']:.0f} s, while each worker "
        f"waited on Keycloak for {timings.get('keycloak', 0) / workers:.0f} s.",
        cpu_line(big),
        profile_line(small),
        f"- **Settings**: of the combinations measured on {matrix[0][3]:,} users, {best[0]} was fastest "
        f"({best[1]:,.0f}/s).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--small-users", type=int, default=100_000)
    parser.add_argument("--matrix-users", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    bench = Bench(work)
    bench.start_keycloak()
    print("keycloak on mariadb ready", flush=True)

    runs = {}
    for label, users in (("small", args.small_users), ("big", args.users)):
        export = export_for(work, users)
        env = bench.fresh(f"bench-{label}", export)
        # The profile on the smaller run, so the larger one's rate carries no recorder.
        runs[label] = bench.run_import(env, export, workers=args.workers, batch=args.batch_size, watch=True,
                                       profile=label == "small")
        print(f"{label}: {runs[label]['rate']:.0f}/s rss {runs[label]['rss_mb']:.0f} MB {runs[label]['tenths']}",
              flush=True)
    ceiling = raw_sql_ceiling(bench, export_for(work, args.users), "bench-big", args.users)
    print(f"raw SQL ceiling: {ceiling:.0f}/s", flush=True)

    small_export = export_for(work, args.matrix_users)
    matrix = []
    for workers, batch in ((2, 200), (2, 500), (4, 200), (4, 500), (4, 1000), (8, 500)):
        env = bench.fresh(f"bench-m{workers}-{batch}", small_export)
        result = bench.run_import(env, small_export, workers=workers, batch=batch)
        matrix.append((f"{workers} workers, batch {batch}", result["rate"], result["report"]["run"]["timings_s"],
                       result["report"]["profiles"]["input"]))
        print(matrix[-1][:3], flush=True)
    bench.stop_keycloak()

    small, big = runs["small"], runs["big"]
    rows = "\n".join(
        f"| {label}, {args.workers} workers, batch {args.batch_size} | {r['report']['profiles']['input']} | "
        f"{r['elapsed']:.0f} | {r['rate']:.0f} | {r['tenths']['first']:.0f} | {r['tenths']['last']:.0f} | "
        f"{r['rss_mb']:.0f} | {json.dumps(r['report']['run']['timings_s'])} | "
        f"{r['cpu']['importer']:.0f}, {r['cpu']['keycloak']:.0f}, {r['cpu']['mariadb']:.0f} |"
        for label, r in (("smaller", small), ("larger", big)))
    body = f"""Keycloak 26.7.3 (production mode) on MariaDB 10.11 and the legacy store on MariaDB, all on this
machine with the importer; MariaDB sized as production is (InnoDB buffer pool {BUFFER_POOL // 2**30} GiB, redo log
{LOG_FILE // 2**30} GiB); generated bare-HMAC exports (gzip). Users go into Keycloak through the
provider's bulk endpoint (`POST /realms/{{realm}}/legacy-migration/users/bulk`, one transaction per
batch). "End to end" is the whole command: reading and validating, staging hashes, Keycloak writes,
store and ledger writes, the report.

| run | profiles | seconds | profiles/s | first tenth (/s) | last tenth (/s) | importer peak RSS (MB) | time split (s, summed over workers) | CPU s (importer, Keycloak, MariaDB) |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |
{rows}
| raw SQL, Keycloak's row shape, same users, one client | {args.users} | | {ceiling:.0f} | | | | | |

Workers and batch size on {args.matrix_users} profiles (fresh realm and store each):

| settings | profiles/s | time split (s) |
| --- | ---: | --- |
""" + "\n".join(f"| {name} | {rate:.0f} | {json.dumps(t)} |" for name, rate, t, _ in matrix) + f"""

{reading(small, big, ceiling, matrix, args.workers, args.batch_size)}
"""
    write_section("import", "Bulk import (`identity import-profiles`)", body)


if __name__ == "__main__":
    main()
