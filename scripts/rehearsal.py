#!/usr/bin/env python3
"""Rehearse cut-over night at scale, timed (`make rehearsal USERS=N`; docs/cutover.md is the runbook).

    .venv/bin/python scripts/rehearsal.py [--users 200000] [--small-users N/4] [--no-docs] [--json OUT]

At each size, on a Keycloak of the pinned version in production mode on MariaDB and a MariaDB store,
both made fresh for it (bench_import.Bench: its own instance and databases, production's database settings;
with --fresh-server, as `make rehearsal` runs it, on a freshly started MariaDB):

1. generate a first delivery of N users, import it and verify it (as the runbook does days before the
   cut-off: besides proving the first delivery, verify remembers what it worked out of each line, so
   that the cut-off's verify parses only the lines that changed);
2. a few users sign in here (first-login migration) and change their password here, as early users
   of the service would; a user signs up here (go-live has not happened, but the rehearsal shows how
   verify counts such users);
3. generate the cut-off delivery (gen_cutoff.py: 1% changed emails, phones or names, 0.5% new users,
   0.2% deleted, 2% new hashes, and new Kii passwords for the users of step 2);
4. import it with its deletions, then `identity migration verify` it: the cut-off window, timed;
5. check what must hold: verify needs no action; the users of step 2 sign in with the password they
   set here and not with Kii's newer one; a user with a new Kii hash signs in with the new password.

The window (4) at two sizes gives its growth with N and the projection to two million. Writes the
table and a reading made from this run's figures to docs/benchmarks.md (`bench:rehearsal`).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import resource
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

from bench_import import BUFFER_POOL, IDENTITY, Bench  # noqa: E402
from benchlib import write_section  # noqa: E402
from gen_cutoff import cutoff  # noqa: E402
from gen_kii_export import generate  # noqa: E402

TARGET = "AWSCognitoIdentityProviderService."
TWO_MILLION = 2_000_000
RUNBOOK = ROOT / "docs" / "cutover.md"
# Pages InnoDB had to read from disk, all the pages it was asked for (whether the pool held the tables), and
# the redo it wrote (against the redo log's size: past it, InnoDB must flush pages before it writes more).
DISK = ("Innodb_buffer_pool_reads", "Innodb_buffer_pool_read_requests", "Innodb_os_log_written",
        "Innodb_buffer_pool_wait_free")
HERE_USERS = 3   # users who sign in and change their password here before the cut-off
# Keycloak's user tables and the store (with one run's ledger) after a cut-off, with room beside them for
# verify's scratch tables and the pages of tables dropped before (InnoDB frees those only as it needs
# room); a pool left full by earlier runs made the window slower (docs/scaling.md).
POOL_PER_USER = 16 * 1024


class Service:
    """The service's own app, in process, on the rehearsal's Keycloak and store: the Cognito API as
    the apps call it."""

    def __init__(self, env: dict):
        saved = dict(os.environ)
        os.environ.clear()  # exactly the rehearsal's settings: none of the caller's IDENTITY_* stays behind
        os.environ.update(env)
        try:
            from identity import create_app
            self.app = create_app()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        self.client = self.app.test_client()

    def call(self, operation: str, body: dict):
        response = self.client.post("/", data=json.dumps(body), headers={
            "X-Amz-Target": TARGET + operation, "Content-Type": "application/x-amz-json-1.1"})
        return response.status_code, response.get_json(force=True, silent=True) or {}

    def sign_in(self, username: str, password: str) -> tuple[int, dict]:
        return self.call("InitiateAuth", {"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "mobile",
                                          "AuthParameters": {"USERNAME": username, "PASSWORD": password}})


PROFILE: Path | None = None  # --profile: py-spy samples of the window's commands, for whoever tunes them


def innodb(names: tuple[str, ...] = DISK) -> dict[str, int]:
    """MariaDB's own counters, by name."""
    rows = subprocess.run(["mysql", "-N", "-e", "SHOW GLOBAL STATUS WHERE Variable_name IN (%s)"
                           % ",".join(f"'{n}'" for n in names)], capture_output=True, text=True, check=True).stdout
    return {name: int(value) for name, value in (row.split("\t") for row in rows.splitlines())}


def megabytes(schemas: tuple[str, ...] = ("keycloak_bench", "identity_bench")) -> dict[str, int]:
    """The databases' size on disk (data and indexes)."""
    rows = subprocess.run(["mysql", "-N", "-e", "SELECT table_schema, ROUND(SUM(data_length + index_length) / 1048576) "
                           "FROM information_schema.tables WHERE table_schema IN (%s) GROUP BY table_schema"
                           % ",".join(f"'{s}'" for s in schemas)], capture_output=True, text=True, check=True).stdout
    return {schema: int(size) for schema, size in (row.split("\t") for row in rows.splitlines())}


def timed(argv: list[str], env: dict, ok=(0,)) -> tuple[float, int, str]:
    step = argv[1] + (" cut-off" if "--deleted" in argv else "")
    if PROFILE and "--deleted" in argv:  # the window's two commands
        out = PROFILE / f"{argv[1]}-{time.monotonic_ns()}.txt"
        argv = [str(Path(sys.executable).parent / "py-spy"), "record", "--subprocesses", "--format", "raw",
                "-o", str(out), "--", *argv]
    before, cpu = innodb(), cpu_seconds()
    started = time.perf_counter()
    process = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    READS[step] = {n: v - before[n] for n, v in innodb().items()}
    CPU[step] = {n: round(v - cpu[n], 1) for n, v in cpu_seconds().items() if n in cpu}
    if process.returncode not in ok:
        raise SystemExit(f"{argv[1:3]} failed ({process.returncode}): {process.stdout[-1500:]} {process.stderr[-1500:]}")
    return elapsed, process.returncode, process.stdout


READS: dict[str, dict] = {}  # each command's counters (DISK) over its latest run, by command
CPU: dict[str, dict] = {}  # each command's CPU seconds over its latest run, by command and process


def cpu_seconds() -> dict[str, float]:
    """CPU seconds (user and system) so far of the commands run and waited for, MariaDB's server and the
    rehearsal's Keycloak: where a window bound by two cores spends them."""
    ticks = os.sysconf("SC_CLK_TCK")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = {"command": children.ru_utime + children.ru_stime}
    pids = {"mariadb": subprocess.run(["pgrep", "-o", "-x", "mariadbd"], capture_output=True, text=True).stdout}
    keycloak_pid = ROOT / "var" / "keycloak-bench.pid"
    if keycloak_pid.exists():
        pids["keycloak"] = keycloak_pid.read_text()
    for name, pid in pids.items():
        if not pid.strip():
            continue   # not running
        try:
            fields = Path(f"/proc/{pid.strip()}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        found[name] = (int(fields[11]) + int(fields[12])) / ticks   # utime, stime
    return found


def early_users(first: Path, service: Service) -> dict[str, dict]:
    """Users who sign in here before the cut-off (their Kii password migrates them) and change their
    password here; by userID."""
    with open(first / "passwords.csv", encoding="utf-8") as f:
        samples = [r for r in csv.DictReader(f) if r["loginName"] and r["disabled"] == "false"]
    users = {}
    for sample in samples[:HERE_USERS]:
        here = "Here-" + secrets.token_urlsafe(12) + "-9a"
        status, answer = service.sign_in(sample["loginName"], sample["password"])
        if answer.get("ChallengeName") == "NEW_PASSWORD_REQUIRED":
            # The Kii password is right but below this realm's policy: the app asks for a new one.
            status, answer = service.call("RespondToAuthChallenge", {
                "ChallengeName": "NEW_PASSWORD_REQUIRED", "ClientId": "mobile", "Session": answer["Session"],
                "ChallengeResponses": {"USERNAME": sample["loginName"], "NEW_PASSWORD": here}})
        elif status == 200:
            status, answer = service.call("ChangePassword", {
                "AccessToken": answer["AuthenticationResult"]["AccessToken"],
                "PreviousPassword": sample["password"], "ProposedPassword": here})
        if status != 200:
            raise SystemExit(f"a Kii user's first login and new password failed: {status} {answer.get('__type')}")
        users[sample["userID"]] = {"username": sample["loginName"], "here": here}
    # One more who never came here: the cut-off's new Kii hash is theirs to sign in with.
    spare = samples[HERE_USERS]
    users[spare["userID"]] = {"username": spare["loginName"], "here": None}
    return users


def sign_up(service: Service) -> None:
    name = "signup-" + secrets.token_hex(4)
    status, answer = service.call("SignUp", {"ClientId": "mobile", "Username": name,
                                             "Password": "Sign-Up-" + secrets.token_urlsafe(9),
                                             "UserAttributes": [{"Name": "email", "Value": f"{name}@example.net"}]})
    if status != 200:
        raise SystemExit(f"SignUp failed: {status} {answer.get('__type')}")


def check_passwords(service: Service, users: dict, kii_passwords: dict) -> dict:
    """The password set here wins over Kii's newer one; a user who never came here has Kii's newer one."""
    checks, seen = {}, {}
    for user_id, user in users.items():
        kii_status, kii_answer = service.sign_in(user["username"], kii_passwords[user_id])
        seen[user_id] = [kii_status, kii_answer.get("__type")]
        if user["here"]:
            here_status, here_answer = service.sign_in(user["username"], user["here"])
            seen[user_id] += [here_status, here_answer.get("__type")]
            checks[user_id] = here_status == 200 and kii_status == 400
        else:
            checks[user_id] = kii_status == 200
    if not all(checks.values()):
        raise SystemExit(f"passwords after the cut-off delivery are wrong: {checks} {seen}")
    return checks


def rehearse(bench: Bench, work: Path, users: int) -> dict:
    first, second = work / f"first-{users}", work / f"cutoff-{users}"
    started = time.perf_counter()
    generate(first, users, seed=users, failure_rate=0.001, gz=True, scheme="bare",
             sample_every=max(1, users // 100))
    generated = time.perf_counter() - started
    env = bench.fresh(f"rehearsal-{users}", first)
    files = lambda d: ["--profiles", str(d / "profiles.jsonl.gz"), "--hashes", str(d / "hashes.csv.gz")]  # noqa: E731
    steps = {}
    steps["first delivery import"], _, _ = timed(
        [IDENTITY, "import-profiles", *files(first), "--report", str(work / f"first-{users}.json"),
         "--workers", "4", "--batch-size", "500"], env)
    steps["first delivery verify"], _, _ = timed(
        [IDENTITY, "migration", "verify", *files(first), "--report", str(work / f"verify-first-{users}.json")], env)
    service = Service(env)
    here = early_users(first, service)
    sign_up(service)
    manifest = cutoff(first, second, seed=users + 1, rehash=tuple(here))
    deleted = ["--deleted", str(second / "deleted.txt")]
    steps["cut-off delivery import"], _, _ = timed(
        [IDENTITY, "import-profiles", *files(second), *deleted, "--report", str(work / f"second-{users}.json"),
         "--workers", "4", "--batch-size", "500"], env)
    steps["migration verify"], _, output = timed(
        [IDENTITY, "migration", "verify", *files(second), *deleted, "--report", str(work / f"verify-{users}.json")],
        env)
    reads, sizes, cpu = dict(READS), megabytes(), dict(CPU)
    free = innodb(("Innodb_buffer_pool_pages_free", "Innodb_buffer_pool_pages_total"))
    verify = json.loads((work / f"verify-{users}.json").read_text(encoding="utf-8"))
    checks = check_passwords(service, here, manifest["passwords"])
    second_report = json.loads((work / f"second-{users}.json").read_text(encoding="utf-8"))
    return {"users": users, "steps": steps, "generated_s": generated, "verify": verify, "checks": checks,
            "second": {k: second_report[k] for k in ("profiles", "hashes", "deleted")},
            "second_timings": second_report["run"].get("timings_s", {}), "reads": reads, "cpu_s": cpu,
            "megabytes": sizes,
            "pool_pages": free,
            "lines": manifest["profile_lines"], "changes": {
                "changed": sum(len(v) for v in manifest["changed"].values()), "new": len(manifest["new"]),
                "deleted": len(manifest["deleted"]), "rehashed": len(manifest["rehashed"])}}


def window(run: dict) -> float:
    return run["steps"]["cut-off delivery import"] + run["steps"]["migration verify"]


def projection(small: dict, big: dict) -> tuple[float, float]:
    """(seconds at two million, the window's growth exponent) from a straight line through two sizes."""
    n1, n2, w1, w2 = small["users"], big["users"], window(small), window(big)
    slope = (w2 - w1) / (n2 - n1)
    exponent = math.log(w2 / w1) / math.log(n2 / n1)
    return w1 + slope * (TWO_MILLION - n1), exponent


def window_reads(run: dict) -> dict[str, int]:
    """MariaDB's counters (DISK) over the window's two commands."""
    steps = [run["reads"].get(name, {}) for name in ("import-profiles cut-off", "migration cut-off")]
    return {name: sum(step.get(name, 0) for step in steps) for name in DISK}


def pool_line(run: dict) -> str:
    counted, pages = window_reads(run), run["pool_pages"]
    disk, asked = counted["Innodb_buffer_pool_reads"], counted["Innodb_buffer_pool_read_requests"]
    return (f"- During the window at {run['users']:,} users InnoDB read {disk:,} pages from disk "
            f"({disk / max(1, asked):.3%} of the {asked:,} it was asked for) and waited for a free page "
            f"{counted['Innodb_buffer_pool_wait_free']:,} times; after it the databases took "
            f"{sum(run['megabytes'].values()):,} MB and "
            f"{pages['Innodb_buffer_pool_pages_free'] / pages['Innodb_buffer_pool_pages_total']:.0%} "
            "of the pool was free.")


def cpu_line(run: dict) -> str:
    """Where the window's CPU went, by process: on two cores, what a faster window must do less of."""
    steps = [run.get("cpu_s", {}).get(name, {}) for name in ("import-profiles cut-off", "migration cut-off")]
    names = sorted({name for step in steps for name in step})
    spent = {name: sum(step.get(name, 0) for step in steps) for name in names}
    total = sum(spent.values())
    return (f"- At {run['users']:,} users the window used {total:,.0f} CPU seconds in {window(run):,.0f} s: "
            + ", ".join(f"{name} {seconds:,.0f} ({seconds / max(total, 1):.0%})" for name, seconds in spent.items())
            + " (the commands with their forked workers; MariaDB's server; the rehearsal's Keycloak).")


def reading(small: dict, big: dict) -> str:
    projected, exponent = projection(small, big)
    b = big
    verify = b["verify"]
    lines = [
        f"- From {small['users']:,} to {big['users']:,} users ({big['users'] / small['users']:.1f} times as many) "
        f"the cut-off window went from {window(small):.0f} s to {window(big):.0f} s "
        f"({window(big) / window(small):.1f} times; time grows as N^{exponent:.2f}).",
        f"- At {b['users']:,} users the cut-off delivery changed {b['changes']['changed']:,} profiles, added "
        f"{b['changes']['new']:,}, deleted {b['changes']['deleted']:,} and re-hashed {b['changes']['rehashed']:,}; "
        f"its import took {b['steps']['cut-off delivery import']:.0f} s "
        f"({b['lines'] / b['steps']['cut-off delivery import']:,.0f} lines/s; split, Keycloak and store summed over "
        f"workers: {json.dumps(b['second_timings'])}), against "
        f"{b['steps']['first delivery import']:.0f} s for the first delivery.",
        f"- `migration verify` took {b['steps']['migration verify']:.0f} s "
        f"({verify['totals']['input'] / b['steps']['migration verify']:,.0f} lines/s; split "
        f"{json.dumps(verify['timings_s'])}) and needed no action: {verify['totals']['matched']:,} matched, "
        f"{verify['totals']['invalid']:,} invalid in the export, "
        f"{verify['totals']['signed_up_here']} signed up here, "
        f"{verify['lines_worked_out']['parsed']:,} lines parsed and the rest as verified before, "
        f"{verify['reasons'].get('migrated_password_kept', {}).get('count', 0)} kept the password they set here.",
        f"- The users who changed their password here signed in with it and not with Kii's newer one; the user "
        f"with a new Kii hash signed in with the new password ({sum(b['checks'].values())} of "
        f"{len(b['checks'])} checks held).",
        *[pool_line(r) for r in (small, big)],
        cpu_line(big),
        f"- projected two-million cut-off window: {projected / 60:.1f} min",
    ]
    return "\n".join(lines)


def runbook_table(small: dict, big: dict) -> str:
    """docs/cutover.md's table of the rehearsed steps, from the same run as docs/benchmarks.md's."""
    rows = [f"| step | {small['users']:,} users | {big['users']:,} users |", "| --- | ---: | ---: |"]
    rows += [f"| {step} | {small['steps'][step]:,.0f} s | {big['steps'][step]:,.0f} s |" for step in small["steps"]]
    rows.append(f"| the cut-off window (import + verify) | {window(small) / 60:.1f} min | {window(big) / 60:.1f} min |")
    return "\n".join(rows)


def write_runbook(small: dict, big: dict) -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    pattern = re.compile(r"(<!-- rehearsal:table -->\n).*?(<!-- /rehearsal:table -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{RUNBOOK}: no <!-- rehearsal:table --> section to write")
    RUNBOOK.write_text(pattern.sub(lambda m: m.group(1) + runbook_table(small, big) + "\n" + m.group(2), text),
                       encoding="utf-8")


def buffer_pool(users: int) -> int:
    """InnoDB's buffer pool as docs/scaling.md sizes production's: it holds Keycloak's user tables and the
    store after a cut-off with room to spare (POOL_PER_USER), within two thirds of this machine's memory."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(BUFFER_POOL, min(POOL_PER_USER * users, memory * 2 // 3))


def write_docs(runs: list[dict], pool: int, fresh_server: bool) -> None:
    """docs/benchmarks.md's section (the table and its reading) and docs/cutover.md's table, from one run."""
    small, big = runs
    rows = "\n".join(f"| {step} | {r['users']:,} | {seconds:.1f} | "
                     f"{(r['users'] if step.startswith('first') else r['lines']) / seconds:,.0f} |"
                     for r in runs for step, seconds in r["steps"].items())
    body = f"""Keycloak 26.7.3 (production mode) and the legacy store on MariaDB 10.11 with production's settings
(bench_import.py's, the InnoDB buffer pool sized to hold the tables of the larger size as docs/scaling.md sizes
production's: {pool / 2**30:.1f} GiB), all on this machine with the importer; each size on a Keycloak
database of its own{" and a freshly started MariaDB" if fresh_server else ""}. Generated deliveries (gzip, bare HMAC
hashes); the cut-off delivery as gen_cutoff.py writes it. The cut-off window is the cut-off
delivery's import (with its deletions) plus `migration verify`; rates are lines of the delivery a
second.

| step | users | seconds | lines/s |
| --- | ---: | ---: | ---: |
{rows}

{reading(small, big)}
"""
    write_section("rehearsal", "Cut-over rehearsal (`make rehearsal`)", body)
    write_runbook(small, big)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--small-users", type=int, help="the second size (default: a quarter of --users)")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--profile", type=Path, help="py-spy samples of the window's commands here (needs py-spy)")
    parser.add_argument("--fresh-server", action="store_true",
                        help="restart this machine's MariaDB before each size (make rehearsal; not under tests, "
                             "which share the server)")
    args = parser.parse_args()
    global PROFILE
    PROFILE = args.profile
    if PROFILE:
        PROFILE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rehearsal-"))
    runs = []
    for users in (args.small_users or args.users // 4, args.users):
        if args.fresh_server:
            # Production's server holds no rehearsal of another size: neither its dropped tables' pages in the
            # pool nor their files' flushing and purge.
            subprocess.run([str(ROOT / "scripts" / "mariadb.sh"), "restart"], check=True)
        # Keycloak's database made anew for each size: the larger size's Keycloak holds its own users only.
        bench = Bench(work, buffer_pool=buffer_pool(args.users))
        bench.start_keycloak()
        try:
            runs.append(rehearse(bench, work, users))
        finally:
            bench.stop_keycloak()
        print(json.dumps({"users": users, "steps": runs[-1]["steps"]}), flush=True)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1, ensure_ascii=False), encoding="utf-8")
    print(reading(*runs), flush=True)
    if not args.no_docs:
        write_docs(runs, buffer_pool(args.users), args.fresh_server)


if __name__ == "__main__":
    main()
