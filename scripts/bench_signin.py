#!/usr/bin/env python3
"""Password sign-in and refresh through the service versus straight to Keycloak, and first-login cost.

    .venv/bin/python scripts/bench_signin.py [--users 40] [--threads 8] [--requests 400] [--layout shared|split]

Uses the running development Keycloak (make run, or scripts/keycloak.sh ensure) and
var/dev.env; makes its own realm ("bench-signin"), users and SQLite store; starts the
service under gunicorn (config/gunicorn.conf.py) on a free port. In one run, alternating
the two targets twice so drift hits both alike, it measures at the same concurrency:
sign-ins per second and p50/p99 latency through `InitiateAuth` versus Keycloak's
token endpoint (password grant), the same for refresh, and the latency of a first
sign-in (legacy hash layered with argon2id, password moved into Keycloak) versus a
normal one; then refresh again under other gunicorn worker counts. Writes docs/benchmarks.md.

--layout split pins Keycloak to the first core and the service and load generator to the
others: Keycloak has the same CPU for both targets, and the service's own CPU does not come
out of Keycloak's, as in a deployment. With everything sharing two cores (the default), the
ratios also measure how much of Keycloak's CPU the service's work takes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import socket
import statistics
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

from benchlib import write_section  # noqa: E402

REALM = "bench-signin"
TARGET = {"X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth",
          "Content-Type": "application/x-amz-json-1.1"}


def env_file() -> dict:
    values = {}
    for line in (ROOT / "var" / "dev.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def load(threads: int, jobs_per_thread: list[list], call) -> dict:
    latencies, errors = [], 0

    def worker(jobs):
        nonlocal errors
        session = requests.Session()
        own = []
        for job in jobs:
            started = time.perf_counter()
            ok = call(session, job)
            own.append(time.perf_counter() - started)
            errors += 0 if ok else 1
        return own

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for own in pool.map(worker, jobs_per_thread):
            latencies += own
    elapsed = time.perf_counter() - started
    return {"rate": len(latencies) / elapsed, "p50": percentile(latencies, 0.5) * 1000,
            "p99": percentile(latencies, 0.99) * 1000, "errors": errors, "n": len(latencies)}


def process_tree(pid: int) -> list[int]:
    """The process and its children (gunicorn's workers, Keycloak's JVM under its launcher)."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid] + [int(c) for c in children]


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def pin(pids: list[int], cpus: set[int]) -> dict[int, set[int]]:
    """Every thread of these processes onto `cpus`; their masks before, to put back."""
    before = {}
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            thread = int(task.name)
            try:
                before[thread] = os.sched_getaffinity(thread)
                os.sched_setaffinity(thread, cpus)
            except OSError:  # the thread ended meanwhile
                pass
    return before


def layout_text(layout: str, keycloak_cpus: set[int], other_cpus: set[int]) -> str:
    if layout == "shared":
        return f"all sharing the same {len(keycloak_cpus)} cores"
    return (f"Keycloak pinned to core {min(keycloak_cpus)}, the service and the load generator to the "
            f"other {len(other_cpus)} (a deployment's shape: Keycloak's CPU is its own, as in both targets alike)")


def cpu_split(parts: dict) -> str:
    return ", ".join(f"{name} {statistics.mean(values):.2f}" for name, values in parts.items())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--first-logins", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5,
                        help="alternating rounds per target; ratios are the median over the pairs")
    parser.add_argument("--worker-sweep", default="1,2,5",
                        help="gunicorn worker counts to measure refresh with (CPU per request); empty: none")
    parser.add_argument("--layout", choices=("shared", "split"), default="shared",
                        help="shared: everything on all cores; split: Keycloak on the first core, the service "
                             "and the load generator on the others (as in a deployment, where they do not share)")
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    keycloak_cpus, other_cpus = set(cpus), set(cpus)
    if args.layout == "split":
        if len(cpus) < 2:
            parser.error("--layout split needs at least 2 cores")
        keycloak_cpus, other_cpus = {cpus[0]}, set(cpus[1:])
        # This process (and so its threads and the service it starts) on the other cores.
        os.sched_setaffinity(0, other_cpus)
    dev = env_file()
    kc = "http://127.0.0.1:8080"
    work = Path(tempfile.mkdtemp(prefix="bench-signin-"))
    port = free_port()
    service = f"http://127.0.0.1:{port}"
    env = {**os.environ, **{k: v for k, v in dev.items() if k.startswith("IDENTITY_")},
           "IDENTITY_DATABASE_URL": f"sqlite:///{work}/store.db", "IDENTITY_KEYCLOAK_REALM": REALM,
           "IDENTITY_PUBLIC_BASE_URL": service, "IDENTITY_BIND": f"127.0.0.1:{port}", "IDENTITY_LOG_LEVEL": "WARNING",
           "IDENTITY_IP_FAILURE_LIMIT": "0"}
    identity = str(ROOT / ".venv" / "bin" / "identity")
    subprocess.run([identity, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([identity, "keycloak", "bootstrap"], env=env, check=True, capture_output=True)

    from keycloak import KeycloakAdmin

    admin = KeycloakAdmin(server_url=kc + "/", username=dev["KC_BOOTSTRAP_ADMIN_USERNAME"],
                          password=dev["KC_BOOTSTRAP_ADMIN_PASSWORD"], realm_name=REALM, user_realm_name="master")
    password = "Bench-Pass-2026"
    users = []
    for i in range(args.users):
        name = f"bench-{i:04d}"
        if not admin.get_user_id(name):
            admin.create_user({"username": name, "enabled": True,
                               "credentials": [{"type": "password", "value": password, "temporary": False}]})
        users.append(name)

    # Kii users for first sign-ins: in Keycloak without a password, layered legacy hash in the store.
    os.environ.update({k: v for k, v in env.items() if k.startswith("IDENTITY_")})
    from identity import create_app
    from identity.db import db
    from identity.legacy.models import LegacyUser, MigrationState

    app = create_app()
    legacy = []
    with app.app_context():
        settings = app.extensions["legacy"]
        for i in range(args.first_logins * 2):
            name = f"kii-bench-{time.time_ns()}-{i}"
            user_id = admin.create_user({"username": name, "enabled": True})
            raw = "$sha256$" + __import__("base64").b64encode(hashlib.sha256(b"Kii-Old-1").digest()).decode().rstrip("=")
            db.session.add(LegacyUser(kii_user_id=name, keycloak_user_id=user_id, username=name,
                                      password_hash=settings.layer(raw), hash_layered=True,
                                      state=MigrationState.pending))
            legacy.append(name)
        db.session.commit()

    def start_service(workers: str | None = None) -> subprocess.Popen:
        started = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gunicorn"), "--config",
                                    str(ROOT / "config" / "gunicorn.conf.py"), "--error-logfile", str(work / "g.log"),
                                    "identity:create_app()"], cwd=ROOT, start_new_session=True,
                                   env={**env, **({"IDENTITY_WORKERS": workers} if workers else {})})
        for _ in range(100):
            try:
                if requests.get(service + "/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        return started

    keycloak_threads = {}
    if args.layout == "split":
        keycloak_threads = pin(process_tree(int((ROOT / "var" / "keycloak.pid").read_text())), keycloak_cpus)
    process = start_service()
    workers = len(process_tree(process.pid)) - 1  # as config/gunicorn.conf.py chose them here
    sweep = []
    try:
        token_url = f"{kc}/realms/{REALM}/protocol/openid-connect/token"

        def direct(session, user):
            r = session.post(token_url, data={"grant_type": "password", "client_id": "mobile", "username": user,
                                              "password": password, "scope": "openid"}, timeout=30)
            return r.status_code == 200

        def via_service(session, user):
            r = session.post(service + "/", timeout=30, headers=TARGET, data=json.dumps({
                "AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "mobile",
                "AuthParameters": {"USERNAME": user, "PASSWORD": password}}))
            return r.status_code == 200

        per_thread = args.requests // args.threads
        jobs = [[users[(t + k * args.threads) % len(users)] for k in range(per_thread)] for t in range(args.threads)]
        for target in (direct, via_service):  # warm-up: one whole round each, unmeasured
            load(args.threads, jobs, target)
        signin = {"keycloak": [], "service": []}
        for _ in range(args.rounds):
            signin["keycloak"].append(load(args.threads, jobs, direct))
            signin["service"].append(load(args.threads, jobs, via_service))

        # Each side refreshes tokens it issued (the issuer differs: Keycloak's own URL, the public one).
        direct_tokens, service_tokens = {}, {}
        with requests.Session() as s:
            for user in users:
                direct_tokens[user] = s.post(token_url, data={"grant_type": "password", "client_id": "mobile",
                                                              "username": user, "password": password,
                                                              "scope": "openid"}).json()["refresh_token"]
                service_tokens[user] = s.post(service + "/", headers=TARGET, data=json.dumps({
                    "AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "mobile", "AuthParameters": {
                        "USERNAME": user, "PASSWORD": password}})).json()["AuthenticationResult"]["RefreshToken"]

        def direct_refresh(session, user):
            return session.post(token_url, data={"grant_type": "refresh_token", "client_id": "mobile",
                                                 "refresh_token": direct_tokens[user]}, timeout=30).status_code == 200

        def service_refresh(session, user):
            return session.post(service + "/", timeout=30, headers=TARGET, data=json.dumps({
                "AuthFlow": "REFRESH_TOKEN_AUTH", "ClientId": "mobile",
                "AuthParameters": {"REFRESH_TOKEN": service_tokens[user]}})).status_code == 200

        keycloak_pids = process_tree(int((ROOT / "var" / "keycloak.pid").read_text()))

        def refresh_rounds(service_pids: list[int], rounds: int) -> tuple[dict, dict]:
            for call in (direct_refresh, service_refresh):  # warm-up
                load(args.threads, jobs, call)
            refresh = {"keycloak": [], "service": []}
            split = {"keycloak": {}, "service": {}}
            for _ in range(rounds):
                for target, call in (("keycloak", direct_refresh), ("service", service_refresh)):
                    before = {"Keycloak": cpu_seconds(keycloak_pids), "service": cpu_seconds(service_pids),
                              "load generator": time.process_time()}
                    refresh[target].append(load(args.threads, jobs, call))
                    after = {"Keycloak": cpu_seconds(keycloak_pids), "service": cpu_seconds(service_pids),
                             "load generator": time.process_time()}
                    for part in before:
                        split[target].setdefault(part, []).append((after[part] - before[part]) / per_thread /
                                                                  args.threads * 1000)
            return refresh, split

        refresh, split = refresh_rounds(process_tree(process.pid), args.rounds)

        # First sign-in (legacy check + Keycloak given the password + tokens) against a normal one.
        first, normal = [], []
        with requests.Session() as s:
            for name in legacy[args.first_logins:]:  # untimed: every worker fetches its Admin API token once
                s.post(service + "/", headers=TARGET, data=json.dumps({
                    "AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "mobile",
                    "AuthParameters": {"USERNAME": name, "PASSWORD": "Kii-Old-1"}}))
            for name in legacy[: args.first_logins]:
                started = time.perf_counter()
                ok = s.post(service + "/", headers=TARGET, data=json.dumps({
                    "AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "mobile",
                    "AuthParameters": {"USERNAME": name, "PASSWORD": "Kii-Old-1"}})).status_code == 200
                first.append(time.perf_counter() - started)
                assert ok
                started = time.perf_counter()
                assert s.post(service + "/", headers=TARGET, data=json.dumps({
                    "AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "mobile",
                    "AuthParameters": {"USERNAME": name, "PASSWORD": "Kii-Old-1"}})).status_code == 200
                normal.append(time.perf_counter() - started)

        # The same refresh rounds with other worker counts: what more processes than cores cost.
        for count in [w.strip() for w in args.worker_sweep.split(",") if w.strip()]:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
            process = start_service(count)
            results, cpu = refresh_rounds(process_tree(process.pid), 3)
            sweep.append((count, statistics.median(r["rate"] for r in results["service"]),
                          statistics.median(s["rate"] / k["rate"] for k, s in zip(results["keycloak"],
                                                                                    results["service"])),
                          statistics.median(cpu["service"]["service"])))
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        for thread, mask in keycloak_threads.items():  # Keycloak as it was
            try:
                os.sched_setaffinity(thread, mask)
            except OSError:
                pass

    def row(name, results):
        rates = [r["rate"] for r in results]
        return (f"| {name} | {len(results)} x {results[0]['n']} | {statistics.median(rates):.1f} "
                f"({min(rates):.1f}-{max(rates):.1f}) | {statistics.median(r['p50'] for r in results):.1f} | "
                f"{statistics.median(r['p99'] for r in results):.1f} | {sum(r['errors'] for r in results)} |")

    def ratio(results):
        """Median and range, over the alternating pairs, of the throughput ratio; median p50 overhead."""
        rates = [s["rate"] / k["rate"] for k, s in zip(results["keycloak"], results["service"])]
        overhead = [s["p50"] - k["p50"] for k, s in zip(results["keycloak"], results["service"])]
        return statistics.median(rates), f"{min(rates):.2f}-{max(rates):.2f}", statistics.median(overhead)

    sr, s_range, so = ratio(signin)
    rr, r_range, ro = ratio(refresh)
    first_ms, normal_ms = statistics.median(first) * 1000, statistics.median(normal) * 1000
    body = f"""{args.threads} client threads, {len(users)} users (each thread its own), {args.requests} requests per
round, {args.rounds} alternating rounds per target after an unmeasured one; Keycloak (dev mode, H2), the service (gunicorn,
{workers} workers, SQLite store) and the load generator on this machine, {layout_text(args.layout,
keycloak_cpus, other_cpus)}.

| target | rounds x requests | per second, median (range) | p50 ms, median | p99 ms, median | errors |
| --- | ---: | ---: | ---: | ---: | ---: |
{row("sign-in, Keycloak token endpoint", signin["keycloak"])}
{row("sign-in, service InitiateAuth", signin["service"])}
{row("refresh, Keycloak token endpoint", refresh["keycloak"])}
{row("refresh, service REFRESH_TOKEN_AUTH", refresh["service"])}

- **Sign-in**: service / Keycloak throughput **{sr:.2f}** (median of the {args.rounds} pairs; range {s_range};
  target 0.95), p50 overhead **{so:.1f} ms** (target under 5 ms).
- **Refresh**: service / Keycloak throughput **{rr:.2f}** (range {r_range}; target 0.85), p50 overhead {ro:.1f} ms.
  CPU per refresh (ms, mean of the rounds), straight to Keycloak: {cpu_split(split["keycloak"])};
  through the service: {cpu_split(split["service"])}.
- **First sign-in** (argon2id-layered legacy hash checked, password set in Keycloak, tokens),
  sequential: median **{first_ms:.0f} ms** against **{normal_ms:.0f} ms** for the same users' next
  sign-in: **{first_ms / normal_ms:.2f}x** (target under 2.5x).
"""
    if sweep:
        body += f"""
Refresh again with other gunicorn worker counts (same load, three alternating rounds each against
Keycloak's token endpoint, medians; {workers} is config/gunicorn.conf.py's default here):

| workers | refreshes/s through the service | service / Keycloak | service CPU per refresh (ms) |
| ---: | ---: | ---: | ---: |
""" + "\n".join(f"| {w} | {rate:.0f} | {r:.2f} | {cpu:.2f} |" for w, rate, r, cpu in sweep) + "\n"
    suffix, title = ("", "") if args.layout == "shared" else ("-split", ", Keycloak on its own core")
    write_section(f"signin-{args.threads}{suffix}",
                  f"Sign-in through the service versus Keycloak, {args.threads} client threads{title}", body)
    print(body)


if __name__ == "__main__":
    main()
