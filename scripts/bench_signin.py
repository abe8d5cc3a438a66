#!/usr/bin/env python3
"""Password sign-in and refresh through the service versus straight to Keycloak, and first-login cost.

    .venv/bin/python scripts/bench_signin.py [--users 40] [--threads 8] [--requests 400] [--layout shared|split]
                                             [--store mariadb|sqlite] [--baseline GIT-REF]

Uses the running development Keycloak (make run, or scripts/keycloak.sh ensure) and
var/dev.env; makes its own realm ("bench-signin"), users and store (MariaDB, as in production,
through scripts/mariadb.sh's server; its own database and user); starts the service under
gunicorn (config/gunicorn.conf.py) on a free port, with production's settings (the per-address
throttle on). With --baseline, the code of that git commit runs as a second service (a git
worktree, its own store) measured in the same alternating rounds: the ratios between the two
say whether a change moved the figures, free of the machine's drift. In one run, alternating
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
import base64
import hashlib
import json
import os
import secrets
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
STORE_SECRET = secrets.token_hex(16)  # the bench's own MariaDB user, for this run only
RESPOND = "AWSCognitoIdentityProviderService.RespondToAuthChallenge"
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
    parser.add_argument("--store", choices=("mariadb", "sqlite"), default="mariadb",
                        help="the legacy store's database: MariaDB as in production (default), or a SQLite file")
    parser.add_argument("--baseline", default="",
                        help="a git commit whose code is measured alongside this one, in the same rounds")
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
           "IDENTITY_DATABASE_URL": store_url(args.store, "current", work), "IDENTITY_KEYCLOAK_REALM": REALM,
           "IDENTITY_PUBLIC_BASE_URL": service, "IDENTITY_BIND": f"127.0.0.1:{port}", "IDENTITY_LOG_LEVEL": "WARNING"}
    identity = str(ROOT / ".venv" / "bin" / "identity")
    subprocess.run([identity, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([identity, "keycloak", "bootstrap"], env=env, check=True, capture_output=True)
    baseline = None
    if args.baseline:
        baseline = Baseline(args.baseline, work, env, store_url(args.store, "baseline", work))
        subprocess.run([identity, "db", "upgrade"], env=baseline.env, cwd=baseline.tree, check=True,
                       capture_output=True)

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

    app = create_app()
    settings = app.extensions["legacy"]
    raw = "$sha256$" + base64.b64encode(hashlib.sha256(b"Kii-Old-1").digest()).decode().rstrip("=")
    stores = {"service": env["IDENTITY_DATABASE_URL"]}
    if baseline:
        stores["baseline"] = baseline.env["IDENTITY_DATABASE_URL"]
    legacy = {name: kii_users(admin, url, settings.layer(raw), args.first_logins * 2) for name, url in stores.items()}

    def start_service(target_env: dict, cwd: Path, url: str, workers: str | None = None) -> subprocess.Popen:
        started = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gunicorn"), "--config",
                                    str(ROOT / "config" / "gunicorn.conf.py"), "--error-logfile", str(work / "g.log"),
                                    "identity:create_app()"], cwd=cwd, start_new_session=True,
                                   env={**target_env, **({"IDENTITY_WORKERS": workers} if workers else {})})
        for _ in range(100):
            try:
                if requests.get(url + "/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        return started

    keycloak_threads = {}
    if args.layout == "split":
        keycloak_threads = pin(process_tree(int((ROOT / "var" / "keycloak.pid").read_text())), keycloak_cpus)
    urls = {"service": service, **({"baseline": baseline.url} if baseline else {})}
    processes = {"service": start_service(env, ROOT, service)}
    if baseline:
        processes["baseline"] = start_service(baseline.env, baseline.tree, baseline.url)
    workers = len(process_tree(processes["service"].pid)) - 1  # as config/gunicorn.conf.py chose them here
    sweep = []
    try:
        token_url = f"{kc}/realms/{REALM}/protocol/openid-connect/token"

        def direct(session, user):
            r = session.post(token_url, data={"grant_type": "password", "client_id": "mobile", "username": user,
                                              "password": password, "scope": "openid"}, timeout=30)
            return r.status_code == 200

        def through(url):
            def call(session, user):
                return initiate(session, url, user, password).status_code == 200
            return call

        def through_srp(url):
            def call(session, user):
                return srp_sign_in(session, url, user, password)
            return call

        # SRP (Amplify's default) through this code: its verifiers come from the password sign-ins above.
        targets = {"keycloak": direct, **{name: through(url) for name, url in urls.items()},
                   "service-srp": through_srp(service)}
        per_thread = args.requests // args.threads
        jobs = [[users[(t + k * args.threads) % len(users)] for k in range(per_thread)] for t in range(args.threads)]
        for call in targets.values():  # warm-up: one whole round each, unmeasured
            load(args.threads, jobs, call)
        signin = {name: [] for name in targets}
        for n in range(args.rounds):
            for name in rotated(list(targets), n):  # each target first in turn: no order favours one
                signin[name].append(load(args.threads, jobs, targets[name]))

        # Each side refreshes tokens it issued (the issuer differs: Keycloak's own URL, the public one).
        tokens = {name: {} for name in targets}
        with requests.Session() as s:
            for user in users:
                tokens["keycloak"][user] = s.post(token_url, data={
                    "grant_type": "password", "client_id": "mobile", "username": user, "password": password,
                    "scope": "openid"}).json()["refresh_token"]
                for name, url in urls.items():
                    answer = initiate(s, url, user, password).json()
                    if "AuthenticationResult" not in answer:
                        raise SystemExit(f"{name}: sign-in of {user} refused: {answer.get('__type')}")
                    tokens[name][user] = answer["AuthenticationResult"]["RefreshToken"]

        def direct_refresh(session, user):
            return session.post(token_url, data={"grant_type": "refresh_token", "client_id": "mobile",
                                                 "refresh_token": tokens["keycloak"][user]}, timeout=30).status_code == 200

        def refresh_through(name):
            def call(session, user):
                return session.post(urls[name] + "/", timeout=30, headers=TARGET, data=json.dumps({
                    "AuthFlow": "REFRESH_TOKEN_AUTH", "ClientId": "mobile",
                    "AuthParameters": {"REFRESH_TOKEN": tokens[name][user]}})).status_code == 200
            return call

        refreshers = {"keycloak": direct_refresh, **{name: refresh_through(name) for name in urls}}
        keycloak_pids = process_tree(int((ROOT / "var" / "keycloak.pid").read_text()))

        def refresh_rounds(rounds: int) -> tuple[dict, dict]:
            for call in refreshers.values():  # warm-up
                load(args.threads, jobs, call)
            service_pids = {name: process_tree(process.pid) for name, process in processes.items()}
            refresh = {name: [] for name in refreshers}
            split = {name: {} for name in refreshers}
            for n in range(rounds):
                for target in rotated(list(refreshers), n):
                    call = refreshers[target]
                    own = service_pids.get(target, service_pids["service"])
                    before = {"Keycloak": cpu_seconds(keycloak_pids), "service": cpu_seconds(own),
                              "load generator": time.process_time()}
                    refresh[target].append(load(args.threads, jobs, call))
                    after = {"Keycloak": cpu_seconds(keycloak_pids), "service": cpu_seconds(own),
                             "load generator": time.process_time()}
                    for part in before:
                        split[target].setdefault(part, []).append((after[part] - before[part]) / per_thread /
                                                                  args.threads * 1000)
            return refresh, split

        refresh, split = refresh_rounds(args.rounds)

        # First sign-in (legacy check + Keycloak given the password + tokens) against a normal one.
        first = {name: first_sign_ins(url, legacy[name], args.first_logins) for name, url in urls.items()}

        # The same refresh rounds with other worker counts: what more processes than cores cost.
        for count in [w.strip() for w in args.worker_sweep.split(",") if w.strip()]:
            os.killpg(processes["service"].pid, signal.SIGTERM)
            processes["service"].wait(timeout=30)
            processes["service"] = start_service(env, ROOT, service, count)
            results, cpu = refresh_rounds(3)
            sweep.append((count, statistics.median(r["rate"] for r in results["service"]),
                          statistics.median(s["rate"] / k["rate"] for k, s in zip(results["keycloak"],
                                                                                    results["service"])),
                          statistics.median(cpu["service"]["service"])))
    finally:
        for process in processes.values():
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        for thread, mask in keycloak_threads.items():  # Keycloak as it was
            try:
                os.sched_setaffinity(thread, mask)
            except OSError:
                pass
        if baseline:
            baseline.remove()

    body = report(args, users, workers, layout_text(args.layout, keycloak_cpus, other_cpus), signin, refresh, split,
                  first, sweep)
    suffix, title = ("", "") if args.layout == "shared" else ("-split", ", Keycloak on its own core")
    if args.baseline:  # one section per baseline: each comparison stays on the page
        suffix = suffix + f"-baseline-{baseline.commit[:7]}"
        title += f", this code against commit {baseline.commit[:10]}"
    write_section(f"signin-{args.threads}{suffix}",
                  f"Sign-in through the service versus Keycloak, {args.threads} client threads{title}", body)
    print(body)


def rotated(names: list[str], n: int) -> list[str]:
    return names[n % len(names):] + names[:n % len(names)]


def srp_sign_in(session, url: str, user: str, password: str) -> bool:
    """USER_SRP_AUTH, then the PASSWORD_VERIFIER answer, with pycognito's client math (an app's CPU: the
    load generator pays it here, on the same cores)."""
    from pycognito.aws_srp import AWSSRP

    app = AWSSRP(username=user, password=password, pool_id="cn-north-1_china", client_id="mobile", client=object())
    auth = app.get_auth_params()
    first = session.post(url + "/", timeout=30, headers={**TARGET}, data=json.dumps({
        "AuthFlow": "USER_SRP_AUTH", "ClientId": "mobile", "AuthParameters": auth}))
    if first.status_code != 200:
        return False
    answer = app.process_challenge(first.json()["ChallengeParameters"], auth)
    second = session.post(url + "/", timeout=30, headers={**TARGET, "X-Amz-Target": RESPOND}, data=json.dumps({
        "ChallengeName": "PASSWORD_VERIFIER", "ClientId": "mobile", "ChallengeResponses": answer}))
    return second.status_code == 200


def initiate(session, url: str, user: str, password: str):
    return session.post(url + "/", timeout=30, headers=TARGET, data=json.dumps({
        "AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "mobile", "AuthParameters": {"USERNAME": user,
                                                                                  "PASSWORD": password}}))


def kii_users(admin, url: str, layered: str, count: int) -> list[str]:
    """Kii users as the import leaves them: in Keycloak without a password, pending in the store at `url`."""
    import sqlalchemy as sa

    from identity.legacy.models import LegacyUser, MigrationState

    names, rows = [], []
    for i in range(count):
        name = f"kii-bench-{time.time_ns()}-{i}"
        user_id = admin.create_user({"username": name, "enabled": True})
        rows.append({"kii_user_id": name, "keycloak_user_id": user_id, "username": name, "password_hash": layered,
                     "hash_layered": True, "state": MigrationState.pending})
        names.append(name)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(LegacyUser.__table__.insert(), rows)
    engine.dispose()
    return names


def first_sign_ins(url: str, names: list[str], count: int) -> tuple[list[float], list[float]]:
    """Sequential first sign-ins of `count` Kii users, each followed by the same user's next sign-in."""
    first, normal = [], []
    with requests.Session() as s:
        for name in names[count:]:  # untimed: every worker fetches its Admin API token once
            initiate(s, url, name, "Kii-Old-1")
        for name in names[:count]:
            started = time.perf_counter()
            assert initiate(s, url, name, "Kii-Old-1").status_code == 200
            first.append(time.perf_counter() - started)
            started = time.perf_counter()
            assert initiate(s, url, name, "Kii-Old-1").status_code == 200
            normal.append(time.perf_counter() - started)
    return first, normal


def row(name, results):
    rates = [r["rate"] for r in results]
    return (f"| {name} | {len(results)} x {results[0]['n']} | {statistics.median(rates):.1f} "
            f"({min(rates):.1f}-{max(rates):.1f}) | {statistics.median(r['p50'] for r in results):.1f} | "
            f"{statistics.median(r['p99'] for r in results):.1f} | {sum(r['errors'] for r in results)} |")


def ratio(results, over="keycloak", target="service"):
    """Median and range, over the alternating rounds, of target / over throughput; median p50 difference."""
    rates = [s["rate"] / k["rate"] for k, s in zip(results[over], results[target])]
    overhead = [s["p50"] - k["p50"] for k, s in zip(results[over], results[target])]
    return statistics.median(rates), f"{min(rates):.2f}-{max(rates):.2f}", statistics.median(overhead)


def report(args, users, workers, layout, signin, refresh, split, first, sweep) -> str:
    """The section's text, every figure from this run's measurements."""
    sr, s_range, so = ratio(signin)
    pr, p_range, _ = ratio(signin, target="service-srp")
    ps, ps_range, pso = ratio(signin, over="service", target="service-srp")
    rr, r_range, ro = ratio(refresh)
    first_ms, normal_ms = (statistics.median(v) * 1000 for v in first["service"])
    rows = [row("sign-in, Keycloak token endpoint", signin["keycloak"]),
            row("sign-in, service InitiateAuth", signin["service"])]
    if "baseline" in signin:
        rows.append(row("sign-in, baseline service InitiateAuth", signin["baseline"]))
    rows.append(row("sign-in, service SRP (InitiateAuth + RespondToAuthChallenge)", signin["service-srp"]))
    rows += [row("refresh, Keycloak token endpoint", refresh["keycloak"]),
             row("refresh, service REFRESH_TOKEN_AUTH", refresh["service"])]
    if "baseline" in refresh:
        rows.append(row("refresh, baseline service REFRESH_TOKEN_AUTH", refresh["baseline"]))
    store = "MariaDB store" if args.store == "mariadb" else "SQLite store"
    lines = "\n".join(rows)
    body = f"""{args.threads} client threads, {len(users)} users (each thread its own), {args.requests} requests per
round, {args.rounds} alternating rounds per target after an unmeasured one; Keycloak (dev mode, H2), the service (gunicorn,
{workers} workers, {store}, the per-address throttle on) and the load generator on this machine, {layout}.

| target | rounds x requests | per second, median (range) | p50 ms, median | p99 ms, median | errors |
| --- | ---: | ---: | ---: | ---: | ---: |
{lines}

- **Sign-in**: service / Keycloak throughput **{sr:.2f}** (median of the {args.rounds} pairs; range {s_range};
  target 0.95), p50 overhead **{so:.1f} ms** (target under 5 ms).
- **SRP sign-in** (Amplify's default; two calls, the client's SRP math in the load generator):
  service SRP / Keycloak throughput **{pr:.2f}** (range {p_range}), SRP / password sign-in through the
  service **{ps:.2f}** (range {ps_range}); p50 {pso:+.1f} ms against the password sign-in.
- **Refresh**: service / Keycloak throughput **{rr:.2f}** (range {r_range}; target 0.85), p50 overhead {ro:.1f} ms.
  CPU per refresh (ms, mean of the rounds), straight to Keycloak: {cpu_split(split["keycloak"])};
  through the service: {cpu_split(split["service"])}.
- **First sign-in** (argon2id-layered legacy hash checked, password set in Keycloak, tokens),
  sequential: median **{first_ms:.0f} ms** against **{normal_ms:.0f} ms** for the same users' next
  sign-in: **{first_ms / normal_ms:.2f}x** (target under 2.5x).
"""
    if "baseline" in signin:
        bs, bs_range, bso = ratio(signin, over="baseline")
        br, br_range, bro = ratio(refresh, over="baseline")
        base_first, base_normal = (statistics.median(v) * 1000 for v in first["baseline"])
        body += f"""- **This code against the baseline ({args.baseline})**, same rounds: sign-in throughput
  **{bs:.2f}** (range {bs_range}), p50 difference {bso:+.1f} ms; refresh throughput **{br:.2f}** (range {br_range}),
  p50 difference {bro:+.1f} ms; first sign-in median {first_ms:.0f} ms against {base_first:.0f} ms
  (**{first_ms / base_first:.2f}x**), next sign-in {normal_ms:.0f} ms against {base_normal:.0f} ms.
"""
    if sweep:
        body += f"""
Refresh again with other gunicorn worker counts (same load, three alternating rounds each against
Keycloak's token endpoint, medians; {workers} is config/gunicorn.conf.py's default here):

| workers | refreshes/s through the service | service / Keycloak | service CPU per refresh (ms) |
| ---: | ---: | ---: | ---: |
""" + "\n".join(f"| {w} | {rate:.0f} | {r:.2f} | {cpu:.2f} |" for w, rate, r, cpu in sweep) + "\n"
    return body


def store_url(kind: str, name: str, work: Path) -> str:
    """A fresh, empty store: a SQLite file, or a MariaDB database of this bench's own user."""
    if kind == "sqlite":
        return f"sqlite:///{work}/{name}.db"
    database, user, secret = f"bench_signin_{name}", "identity_bench", STORE_SECRET
    sql = (f"DROP DATABASE IF EXISTS {database}; CREATE DATABASE {database} CHARACTER SET utf8mb4; "
           f"CREATE USER IF NOT EXISTS '{user}'@'127.0.0.1' IDENTIFIED BY '{secret}'; "
           f"ALTER USER '{user}'@'127.0.0.1' IDENTIFIED BY '{secret}'; "
           f"GRANT ALL ON {database}.* TO '{user}'@'127.0.0.1';")
    subprocess.run(["mariadb", "-uroot", "-e", sql], check=True)
    return f"mysql+pymysql://{user}:{secret}@127.0.0.1:3306/{database}?charset=utf8mb4"


class Baseline:
    """Another commit's code, checked out as a git worktree, run as a second service on its own port."""

    def __init__(self, ref: str, work: Path, env: dict, database_url: str):
        self.commit = subprocess.run(["git", "rev-parse", ref], cwd=ROOT, check=True, capture_output=True,
                                     text=True).stdout.strip()
        self.tree = work / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(self.tree), self.commit], cwd=ROOT, check=True,
                       capture_output=True)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        # PYTHONPATH first: the baseline's `identity` package, not the editable install of this tree.
        self.env = {**env, "PYTHONPATH": str(self.tree), "IDENTITY_DATABASE_URL": database_url,
                    "IDENTITY_PUBLIC_BASE_URL": self.url, "IDENTITY_BIND": f"127.0.0.1:{port}"}

    def remove(self) -> None:
        subprocess.run(["git", "worktree", "remove", "--force", str(self.tree)], cwd=ROOT, capture_output=True)


if __name__ == "__main__":
    main()
