#!/usr/bin/env python3
"""Sign-ins and refreshes through nginx on the cluster (scripts/cluster.py), with two Keycloak nodes and
with one, and first logins spread over both services (`make bench-cluster`).

    .venv/bin/python scripts/bench_cluster.py [--users 40] [--threads 8] [--requests 400] [--first-logins 200]

Starts the cluster when it is not running (and leaves it as it found it). Everything goes through the
public side of nginx (TLS, the production template, both services), with production's settings (the
throttles on). The one-node rounds stop node 2: nginx's internal balancer then sends every call to node 1.
Rounds alternate two nodes, one node, two nodes, so the machine's drift hits both alike. Writes
docs/benchmarks.md (section bench:cluster).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import statistics
import sys
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_signin import TARGET, initiate, kii_users, load  # noqa: E402
from benchlib import write_section  # noqa: E402
from cluster import REALM, Cluster  # noqa: E402

PASSWORD = "Bench-Cluster-2026"
KII_PASSWORD = "Kii-Old-1"


def session_for(cluster: Cluster) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = cluster.cafile
    return session


def users(admin, count: int) -> list[str]:
    names = []
    for i in range(count):
        name = f"bench-cluster-{i:04d}"
        if not admin.get_user_id(name):
            admin.create_user({"username": name, "enabled": True,
                               "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}]})
        names.append(name)
    return names


def layered_hash(cluster: Cluster) -> str:
    """A Kii hash as production stores it: layered with argon2id under the cluster's settings."""
    os.environ.update({k: v for k, v in cluster.identity_env().items() if k.startswith("IDENTITY_")})
    from identity import create_app

    raw = "$sha256$" + base64.b64encode(hashlib.sha256(KII_PASSWORD.encode()).digest()).decode().rstrip("=")
    return create_app().extensions["legacy"].layer(raw)


def measure(cluster: Cluster, names: list[str], tokens: dict, args) -> dict:
    public = cluster.public_url
    jobs = [[names[(t + i) % len(names)] for i in range(args.requests // args.threads)] for t in range(args.threads)]

    def sign_in(session, user):
        session.trust_env, session.verify = False, cluster.cafile  # REQUESTS_CA_BUNDLE would replace verify
        return initiate(session, public, user, PASSWORD).status_code == 200

    def refresh(session, user):
        session.trust_env, session.verify = False, cluster.cafile  # REQUESTS_CA_BUNDLE would replace verify
        answer = session.post(public + "/", timeout=30, headers=TARGET, data=json.dumps({
            "AuthFlow": "REFRESH_TOKEN_AUTH", "ClientId": "mobile",
            "AuthParameters": {"REFRESH_TOKEN": tokens[user]}}))
        return answer.status_code == 200

    return {"sign-in": load(args.threads, jobs, sign_in), "refresh": load(args.threads, jobs, refresh)}


def reading(two: dict, one: dict, first: dict, cores: int) -> str:
    lines = []
    for kind, title in (("sign-in", "Password sign-ins"), ("refresh", "Refreshes")):
        rate2, rate1 = two[kind]["rate"], one[kind]["rate"]
        lines.append(f"- **{title}**: {rate2:,.1f}/s through nginx with two Keycloak nodes and "
                     f"{rate1:,.1f}/s with one ({rate2 / rate1:.2f}x).")
    slower = [kind for kind in ("sign-in", "refresh") if two[kind]["rate"] < one[kind]["rate"]]
    lines.append(f"- On this machine both nodes, both services, nginx, MariaDB and the load generator share {cores} "
                 f"cores, so a second node adds no CPU: "
                 + (f"with two nodes the {' and '.join({'sign-in': 'sign-ins', 'refresh': 'refreshes'}[k] for k in slower)} ran slower, which is what clustering "
                    f"costs here (a second JVM, the nodes' cache traffic), not what a second machine would add."
                    if slower else "the two-node figures were no lower, so clustering cost nothing measurable here; "
                    "a second machine would add its own CPU."))
    lines.append(f"- **First logins** spread over both services: {first['rate']:,.1f}/s ({first['n']} Kii users, "
                 f"p50 {first['p50']:.0f} ms, p99 {first['p99']:.0f} ms; failed: {first['errors']}).")
    errors = sum(r[k]["errors"] for r in (two, one) for k in ("sign-in", "refresh"))
    lines.append(f"- Failed calls in the sign-in and refresh rounds: {errors:.0f}.")
    return "\n".join(lines)


def mean_of(rounds: list[dict]) -> dict:
    return {kind: {key: statistics.mean(r[kind][key] for r in rounds) for key in ("rate", "p50", "p99", "errors")}
            for kind in ("sign-in", "refresh")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--first-logins", type=int, default=200)
    args = parser.parse_args()
    cluster = Cluster()
    was_running = all(cluster.node_pid(node) for node in cluster.ports.nodes)
    cluster.start()
    from keycloak import KeycloakAdmin

    secret = cluster.secrets()
    admin = KeycloakAdmin(server_url=cluster.ports.nodes[0].url, realm_name=REALM, user_realm_name="master",
                          username=secret["KC_BOOTSTRAP_ADMIN_USERNAME"], password=secret["KC_BOOTSTRAP_ADMIN_PASSWORD"])
    names = users(admin, args.users)
    session = session_for(cluster)
    tokens = {}
    for name in names:
        answer = initiate(session, cluster.public_url, name, PASSWORD)
        answer.raise_for_status()
        tokens[name] = answer.json()["AuthenticationResult"]["RefreshToken"]
    second = cluster.ports.nodes[1]
    rounds: dict[str, list] = {"two": [], "one": []}
    try:
        for layout in ("two", "one", "two"):
            if layout == "one":
                cluster.keycloak("stop", second)
            elif cluster.node_pid(second) is None:
                cluster.keycloak("ensure", second)
            measure(cluster, names, tokens, argparse.Namespace(**{**vars(args), "requests": args.threads * 5}))
            rounds[layout].append(measure(cluster, names, tokens, args))
            print(layout, {k: round(v["rate"], 1) for k, v in rounds[layout][-1].items()}, flush=True)
        kii = kii_users(admin, cluster.identity_env()["IDENTITY_DATABASE_URL"], layered_hash(cluster),
                        args.first_logins)
        per_thread = [kii[t::args.threads] for t in range(args.threads)]

        def first_login(s, user):
            s.trust_env, s.verify = False, cluster.cafile
            return initiate(s, cluster.public_url, user, KII_PASSWORD).status_code == 200

        first = load(args.threads, per_thread, first_login)
        print("first logins", round(first["rate"], 1), flush=True)
    finally:
        if not was_running:
            cluster.stop()
    two, one = mean_of(rounds["two"]), mean_of(rounds["one"])
    rows = "\n".join(f"| {kind} | {layout} | {r[kind]['rate']:.1f} | {r[kind]['p50']:.0f} | {r[kind]['p99']:.0f} | "
                     f"{r[kind]['errors']:.0f} |"
                     for kind in ("sign-in", "refresh") for layout, r in (("two nodes", two), ("one node", one)))
    body = f"""The cluster of `make cluster` (two Keycloak 26 nodes in production mode on MariaDB, two gunicorn
services, nginx with the production template), everything through nginx's public side over TLS with
production's settings; {args.threads} client threads, {args.requests} requests a round, {args.users} users
(`USER_PASSWORD_AUTH` for sign-ins). One node: node 2 stopped. Two-node figures are the mean of the rounds
before and after the one-node round.

| call | Keycloak | per second | p50 (ms) | p99 (ms) | errors |
| --- | --- | ---: | ---: | ---: | ---: |
{rows}
| first login (Kii user, layered hash) | two nodes | {first['rate']:.1f} | {first['p50']:.0f} | {first['p99']:.0f} | {first['errors']} |

{reading(two, one, first, os.cpu_count())}
"""
    write_section("cluster", "The cluster: one Keycloak node and two (`make bench-cluster`)", body)


if __name__ == "__main__":
    main()
