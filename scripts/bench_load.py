#!/usr/bin/env python3
"""Mixed load (locust, headless) against gunicorn with several workers and Keycloak on MariaDB.

    .venv/bin/python scripts/bench_load.py [--users 2000] [--seconds 45] [--below 4] [--above 64]

Starts its own Keycloak (instance "bench", port 8280, on a fresh MariaDB database) and legacy
store (MariaDB), imports --users generated Kii profiles, migrates a quarter of them (warm-up),
starts the service under gunicorn (config/gunicorn.conf.py, --workers workers) and runs
scripts/locustfile.py twice for --seconds each: below saturation (--below simulated apps) and
past it (--above apps). Traffic: native sign-ins, refreshes and GetUser (4:4:4) and first-login
migrations (1). Records throughput, p50/p99 and errors by type to docs/benchmarks.md. Needs
MariaDB (scripts/mariadb.sh start) and locust (`pip install -e '.[bench]'`).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from bench_import import Bench  # noqa: E402
from bench_signin import free_port  # noqa: E402
from benchlib import write_section  # noqa: E402
from gen_kii_export import generate  # noqa: E402

BIN = Path(sys.executable).parent


def sign_in(url: str, login: str, password: str) -> int:
    response = requests.post(url, timeout=60, data=json.dumps({
        "AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "mobile",
        "AuthParameters": {"USERNAME": login, "PASSWORD": password}}),
        headers={"X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth",
                 "Content-Type": "application/x-amz-json-1.1"})
    return response.status_code


def start_service(env: dict, port: int, workers: int, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "--config", str(ROOT / "config" / "gunicorn.conf.py"), "--error-logfile", str(log),
         "identity:create_app()"],
        env={**env, "IDENTITY_BIND": f"127.0.0.1:{port}", "IDENTITY_WORKERS": str(workers)}, cwd=ROOT,
        start_new_session=True)
    for _ in range(300):
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"service did not start: {log.read_text()[-2000:]}")


def run_locust(url: str, users_file: Path, apps: int, seconds: int, prefix: Path) -> dict:
    subprocess.run([str(BIN / "locust"), "-f", str(HERE / "locustfile.py"), "--headless", "--only-summary",
                    "-u", str(apps), "-r", str(apps), "-t", f"{seconds}s", "--host", url, "--csv", str(prefix),
                    "--stop-timeout", "15", "--loglevel", "WARNING"],
                   env={**os.environ, "LOAD_USERS": str(users_file)}, check=False, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    with open(f"{prefix}_stats.csv", newline="") as f:
        stats = {row["Name"]: row for row in csv.DictReader(f)}
    with open(f"{prefix}_failures.csv", newline="") as f:
        failures = [row for row in csv.DictReader(f)]
    return {"stats": stats, "failures": failures}


def table(result: dict) -> str:
    lines = ["| request | count | per second | p50 (ms) | p99 (ms) | errors | error rate |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, row in result["stats"].items():
        count, failed = int(row["Request Count"]), int(row["Failure Count"])
        label = "**all**" if name == "Aggregated" else name
        lines.append(f"| {label} | {count} | {float(row['Requests/s']):.1f} | {row['50%']} | {row['99%']} | "
                     f"{failed} | {100 * failed / max(count, 1):.2f}% |")
    errors: dict[str, int] = {}
    for row in result["failures"]:
        # locust writes CatchResponseError('TooManyRequestsException'): keep the name inside.
        named = re.search(r"'([^']+)'", row["Error"])
        kind = named.group(1) if named else row["Error"]
        errors[kind] = errors.get(kind, 0) + int(row["Occurrences"])
    summary = ", ".join(f"{kind}: {count}" for kind, count in sorted(errors.items())) or "none"
    return "\n".join(lines) + f"\n\nErrors by type: {summary}.\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=45)
    parser.add_argument("--below", type=int, default=4, help="simulated apps below saturation")
    parser.add_argument("--above", type=int, default=64, help="simulated apps past saturation")
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    bench = Bench(work)
    bench.start_keycloak()
    export = work / "export"
    generate(export, args.users, seed=11, failure_rate=0.0, gz=True, sample_every=1, deleted=0)
    env = bench.fresh("load", export)
    bench.run_import(env, export, workers=2, batch=200)
    with open(export / "passwords.csv", newline="", encoding="utf-8") as f:
        people = [(r["loginName"] or r["email"], r["password"]) for r in csv.DictReader(f)
                  if r["disabled"] == "false" and (r["loginName"] or r["email"])]

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env.update({"IDENTITY_PUBLIC_BASE_URL": url, "IDENTITY_LOG_LEVEL": "WARNING", "IDENTITY_IP_FAILURE_LIMIT": "1000000",
                "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics")})
    service = start_service(env, port, args.workers, work / "gunicorn.log")
    try:
        warm = people[: len(people) // 4]
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda p: sign_in(url + "/", *p), warm))
        migrated = [p for p, code in zip(warm, codes) if code == 200]
        print(f"warm-up: {len(migrated)} of {len(warm)} migrated", flush=True)
        pending = people[len(people) // 4:]
        results = {}
        for label, apps, share in (("below", args.below, 0.5), ("above", args.above, 0.5)):
            users_file = work / f"users-{label}.json"
            take = pending[: int(len(pending) * share)]
            pending = pending[len(take):]
            users_file.write_text(json.dumps({"migrated": migrated, "pending": take}))
            results[label] = run_locust(url, users_file, apps, args.seconds, work / f"locust-{label}")
            print(label, results[label]["stats"].get("Aggregated"), flush=True)
    finally:
        os.killpg(service.pid, signal.SIGTERM)
        service.wait(timeout=60)
        bench.stop_keycloak()

    body = f"""gunicorn with {args.workers} workers (config/gunicorn.conf.py: gthread, 16 threads, 8 requests in flight
per worker, 1 s admission wait), Keycloak 26.7.3 on MariaDB and the legacy store on MariaDB, all on
this machine with the load generator (locust, headless, scripts/locustfile.py). {args.users} imported
Kii users; a quarter migrated before the run. Each simulated app loops with 0-50 ms pauses over
native sign-ins, refreshes and GetUser (4:4:4) and first-login migrations (1); a request without
an answer in 10 s counts as a timeout. {args.seconds} s per stage.

### Below saturation: {args.below} apps

{table(results['below'])}
### Past saturation: {args.above} apps

{table(results['above'])}
Reading: below saturation every request is answered without error. Past it, the service
refuses what it cannot take within a second with `TooManyRequestsException` (which the AWS SDKs
retry with back-off) instead of letting requests queue into client timeouts.
"""
    write_section("load", "Mixed load through gunicorn (locust)", body)


if __name__ == "__main__":
    main()
