#!/usr/bin/env python3
"""The production shape on this machine (`make cluster`, `make cluster-stop`; docs/scaling.md, "The
cluster as tested"):

- two Keycloak nodes of the pinned version in production mode (`start`) on one MariaDB database,
  clustered by Keycloak itself: its embedded Infinispan, JDBC-ping discovery through that database,
  the nodes' traffic over mutual TLS (Keycloak's defaults); each bound to loopback on its own ports;
- two service instances (gunicorn, config/gunicorn.conf.py) on one MariaDB store;
- Debian's nginx: the production template (config/nginx/templates) balancing the public and admin
  sides over both services and both nodes, and an internal listener, never public, through which
  the services reach Keycloak and Keycloak's login page reaches the services' bridge, balanced the
  same way. A node that refuses connections is skipped: the request goes to the other.

    .venv/bin/python scripts/cluster.py start | stop | status

Its secrets are made once into var/cluster/cluster.env (scripts/dev-env.sh), the store and Keycloak's
database are made when missing. tests/cluster/ starts the same cluster for the suite.
"""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "cluster"
ENV_FILE = VAR / "cluster.env"
TEMPLATE = ROOT / "config" / "nginx" / "templates" / "identity.conf.template"
NGINX = "/usr/sbin/nginx"
REALM, POOL = "china", "cn-north-1_china"


@dataclass(frozen=True)
class Node:
    """One Keycloak node: its instance name and loopback ports (HTTP, management, cluster traffic)."""
    name: str
    http: int
    mgmt: int
    cluster: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http}"


@dataclass(frozen=True)
class Ports:
    nodes: tuple[Node, ...] = (Node("cluster1", 18581, 19581, 7811), Node("cluster2", 18582, 19582, 7812))
    services: tuple[int, ...] = (18601, 18602)
    internal: int = 18590
    public: int = 18643
    admin: int = 18644
    redirect: int = 18680


def read_env(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and line[0] != "#")
    return {key: value for key, value in pairs}


def mysql(sql: str) -> None:
    subprocess.run(["mysql", "-uroot", "-e", sql], check=True)


def wait_for(url: str, seconds: float, cafile: str | None = None) -> None:
    import ssl

    context = ssl.create_default_context(cafile=cafile) if cafile else None
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"cluster: nothing answered {url} within {seconds:.0f} s")
        time.sleep(0.5)


class Cluster:
    def __init__(self, var: Path = VAR, ports: Ports = Ports()):
        self.var, self.ports = var, ports
        self.env_file = var / "cluster.env"
        self.nginx_prefix = var / "nginx"
        self.cafile = str(self.nginx_prefix / "tls" / "tls.crt")
        self.made_secrets = False

    # --- addresses -------------------------------------------------------------------------------

    @property
    def public_url(self) -> str:
        return f"https://127.0.0.1:{self.ports.public}"

    @property
    def admin_url(self) -> str:
        return f"https://127.0.0.1:{self.ports.admin}"

    @property
    def internal_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.internal}"

    def service_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports.services[index]}"

    # --- settings --------------------------------------------------------------------------------

    def secrets(self) -> dict[str, str]:
        if not self.env_file.exists():
            self.made_secrets = True
            self.var.mkdir(parents=True, exist_ok=True)
            subprocess.run([str(ROOT / "scripts" / "dev-env.sh"), str(self.env_file)], check=True)
            with self.env_file.open("a") as out:
                out.write(f"CLUSTER_DB_PASSWORD={os.urandom(16).hex()}\n")
        return read_env(self.env_file)

    def node_env(self, node: Node) -> dict[str, str]:
        secret = self.secrets()
        return {**os.environ, "KEYCLOAK_INSTANCE": node.name, "KEYCLOAK_HTTP_PORT": str(node.http),
                "KEYCLOAK_MGMT_PORT": str(node.mgmt), "KEYCLOAK_ENV_FILE": str(self.env_file),
                "KC_DB": "mariadb", "KC_DB_URL": "jdbc:mariadb://127.0.0.1:3306/keycloak_cluster",
                "KC_DB_USERNAME": "cluster", "KC_DB_PASSWORD": secret["CLUSTER_DB_PASSWORD"],
                # Keycloak's clustering as documented: the default stack (JDBC-ping in this database),
                # on loopback, each node on its own port.
                "KC_CACHE": "ispn", "KC_CACHE_EMBEDDED_NETWORK_BIND_ADDRESS": "127.0.0.1",
                "KC_CACHE_EMBEDDED_NETWORK_BIND_PORT": str(node.cluster)}

    def identity_env(self, keycloak_url: str | None = None) -> dict[str, str]:
        """The service's settings, as deployed behind nginx: Keycloak through the internal balancer."""
        secret = self.secrets()
        env = {key: value for key, value in os.environ.items() if not key.startswith("IDENTITY_")}
        # Not the master realm's administrator: only the realm's bootstrap needs it (identity()).
        env.update({key: value for key, value in secret.items()
                    if key.startswith("IDENTITY_") and not key.startswith("IDENTITY_KEYCLOAK_BOOTSTRAP_")})
        env.update({
            "IDENTITY_DATABASE_URL": f"mysql+pymysql://cluster:{secret['CLUSTER_DB_PASSWORD']}@127.0.0.1:3306/"
                                     "identity_cluster?charset=utf8mb4",
            "IDENTITY_KEYCLOAK_URL": keycloak_url or self.internal_url, "IDENTITY_KEYCLOAK_REALM": REALM,
            "IDENTITY_PUBLIC_BASE_URL": self.public_url, "IDENTITY_BRIDGE_URL": f"{self.internal_url}/bridge/v1",
            "IDENTITY_KEYCLOAK_APP_REDIRECT_URIS": json.dumps(["com.example.app://callback"]),
            "IDENTITY_TRUSTED_PROXIES": "1", "IDENTITY_KEYCLOAK_PROXY": "false", "IDENTITY_LOG_LEVEL": "WARNING",
            "IDENTITY_USER_POOL_ID": POOL,
            # Keycloak on MariaDB keeps 3-byte UTF-8 in its tables (docs/import.md).
            "IDENTITY_KEYCLOAK_BMP_ONLY": "true"})
        return env

    # --- the parts -------------------------------------------------------------------------------

    def databases(self) -> None:
        password = self.secrets()["CLUSTER_DB_PASSWORD"]
        if self.made_secrets:
            # New secrets, new databases: Keycloak's master administrator in a database kept from before
            # has another password (a `make clean`, another checkout on the same server).
            mysql("DROP DATABASE IF EXISTS keycloak_cluster; DROP DATABASE IF EXISTS identity_cluster;")
        mysql("CREATE DATABASE IF NOT EXISTS keycloak_cluster CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci; "
              "CREATE DATABASE IF NOT EXISTS identity_cluster CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci; "
              + " ".join(f"CREATE OR REPLACE USER 'cluster'@'{host}' IDENTIFIED BY '{password}'; "
                         f"GRANT ALL ON keycloak_cluster.* TO 'cluster'@'{host}'; "
                         f"GRANT ALL ON identity_cluster.* TO 'cluster'@'{host}';"
                         for host in ("127.0.0.1", "localhost")))

    def keycloak(self, command: str, node: Node) -> None:
        subprocess.run([str(ROOT / "scripts" / "keycloak.sh"), command], env=self.node_env(node), check=True)

    def node_pid(self, node: Node) -> int | None:
        path = ROOT / "var" / f"keycloak-{node.name}.pid"
        try:
            pid = int(path.read_text())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def identity(self, *argv: str) -> None:
        """An `identity` command against node 1, with the bootstrap's administrator."""
        env = {**self.identity_env(self.ports.nodes[0].url),
               **{key: value for key, value in self.secrets().items() if key.startswith("IDENTITY_KEYCLOAK_BOOTSTRAP_")}}
        done = subprocess.run([str(ROOT / ".venv" / "bin" / "identity"), *argv], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"cluster: identity {' '.join(argv)} failed: {done.stderr[-2000:]}")

    def start_service(self, index: int) -> None:
        pid_file = self.var / f"service-{index}.pid"
        if pid_file.exists() and _alive(int(pid_file.read_text())):
            return
        env = {**self.identity_env(), "IDENTITY_BIND": f"127.0.0.1:{self.ports.services[index]}",
               "IDENTITY_WORKERS": "2", "PROMETHEUS_MULTIPROC_DIR": str(self.var / f"metrics-{index}")}
        log = self.var / f"service-{index}.log"
        subprocess.run([str(ROOT / ".venv" / "bin" / "gunicorn"), "--config", str(ROOT / "config" / "gunicorn.conf.py"),
                        "--daemon", "--pid", str(pid_file), "--error-logfile", str(log), "--access-logfile", str(log),
                        "identity:create_app()"], env=env, check=True)
        wait_for(f"{self.service_url(index)}/healthz", 60)

    def stop_service(self, index: int) -> None:
        pid_file = self.var / f"service-{index}.pid"
        if pid_file.exists():
            _terminate(int(pid_file.read_text()), signal.SIGTERM)
            pid_file.unlink(missing_ok=True)

    def start(self) -> None:
        subprocess.run([str(ROOT / "scripts" / "mariadb.sh"), "start"], check=True)
        self.databases()
        for node in self.ports.nodes:  # the first makes the schema; the second joins it
            self.keycloak("ensure", node)
        self.identity("db", "upgrade")
        self.identity("keycloak", "bootstrap")
        Edge(self).start()
        for index in range(len(self.ports.services)):
            self.start_service(index)
        wait_for(f"{self.public_url}/healthz", 30, cafile=self.cafile)

    def stop(self) -> None:
        for index in range(len(self.ports.services)):
            self.stop_service(index)
        Edge(self).stop()
        for node in self.ports.nodes:
            self.keycloak("stop", node)

    def members(self, node: Node) -> int:
        """How many nodes this node's cluster view holds (Keycloak's log of its Infinispan channel)."""
        import re

        views = re.findall(r"ISPN000094: Received new cluster view for channel ISPN: \[[^]]*\] \((\d+)\)",
                           (ROOT / "var" / f"keycloak-{node.name}.log").read_text(errors="replace"))
        return int(views[-1]) if views else 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _terminate(pid: int, how: signal.Signals, seconds: float = 20) -> None:
    try:
        os.kill(pid, how)
    except OSError:
        return
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


class Edge:
    """Debian's nginx with the production template, and the internal balancer beside it."""

    def __init__(self, cluster: Cluster):
        self.cluster, self.prefix = cluster, cluster.nginx_prefix

    def render(self) -> None:
        ports = self.cluster.ports
        services = " ".join(f"server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" for port in ports.services)
        nodes = " ".join(f"server 127.0.0.1:{node.http} max_fails=1 fail_timeout=5s;" for node in ports.nodes)
        values = {"IDENTITY_PUBLIC_HOST": "127.0.0.1", "IDENTITY_KEYCLOAK_REALM": REALM,
                  "IDENTITY_USER_POOL_ID": POOL, "IDENTITY_ADMIN_ALLOW": "127.0.0.1",
                  "NGINX_PUBLIC_LISTEN": f"127.0.0.1:{ports.public}", "NGINX_ADMIN_LISTEN": f"127.0.0.1:{ports.admin}",
                  "NGINX_REDIRECT_LISTEN": f"127.0.0.1:{ports.redirect}",
                  "NGINX_SERVICE_SERVERS": services, "NGINX_KEYCLOAK_SERVERS": nodes,
                  "NGINX_ACCESS_LOG": str(self.prefix / "access.log")}
        rendered = subprocess.run(["envsubst", " ".join(f"${{{name}}}" for name in values)],
                                  input=TEMPLATE.read_text(), env=values, capture_output=True, text=True,
                                  check=True).stdout
        (self.prefix / "conf.d").mkdir(parents=True, exist_ok=True)
        (self.prefix / "conf.d" / "identity.conf").write_text(rendered)
        (self.prefix / "conf.d" / "internal.conf").write_text(f"""# Never public: the services reach Keycloak, and Keycloak's login page the services' bridge.
upstream internal_keycloak {{ {nodes} keepalive 32; }}
upstream internal_services {{ {services} keepalive 16; keepalive_timeout 4s; }}  # below gunicorn's 5 s
log_format upstreams '$upstream_addr $status "$request_method $uri"';
server {{
    listen 127.0.0.1:{ports.internal};
    access_log {self.prefix}/internal.log upstreams;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    # The caller's Host and X-Forwarded-* pass as sent: the service names the public issuer with them.
    proxy_set_header Host $http_host;
    client_max_body_size 8m;
    proxy_read_timeout 300s;
    location /bridge/ {{ proxy_pass http://internal_services; }}
    location / {{ proxy_pass http://internal_keycloak; proxy_buffer_size 128k; proxy_buffers 4 256k; }}
}}
""")

    def start(self) -> None:
        if (self.prefix / "nginx.pid").exists() and _alive(int((self.prefix / "nginx.pid").read_text())):
            return
        self.prefix.mkdir(parents=True, exist_ok=True)
        tls = self.prefix / "tls"
        if not (tls / "tls.crt").exists():
            tls.mkdir(exist_ok=True)
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj",
                            "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout",
                            str(tls / "tls.key"), "-out", str(tls / "tls.crt")], check=True, capture_output=True)
        for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.prefix / "temp" / name).mkdir(parents=True, exist_ok=True)
        self.render()
        user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
        p = self.prefix
        (p / "nginx.conf").write_text(f"""{user}worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {p}/access.log;
    client_body_temp_path {p}/temp/body;
    proxy_temp_path {p}/temp/proxy;
    fastcgi_temp_path {p}/temp/fastcgi;
    uwsgi_temp_path {p}/temp/uwsgi;
    scgi_temp_path {p}/temp/scgi;
    include conf.d/*.conf;
}}
""")
        command = [NGINX, "-p", str(p), "-c", str(p / "nginx.conf")]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
        if checked.returncode != 0:
            raise SystemExit(f"cluster: nginx refused its configuration: {checked.stderr}")
        subprocess.run([*command, "-g", "daemon on;"], check=True)

    def stop(self) -> None:
        pid_file = self.prefix / "nginx.pid"
        if pid_file.exists():
            _terminate(int(pid_file.read_text()), signal.SIGQUIT)


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    cluster = Cluster()
    if command == "start":
        cluster.start()
        print(f"cluster: public {cluster.public_url} (CA {cluster.cafile}), admin console {cluster.admin_url}/admin, "
              f"Keycloak nodes {', '.join(n.url for n in cluster.ports.nodes)}, services "
              f"{', '.join(cluster.service_url(i) for i in range(len(cluster.ports.services)))}")
    elif command == "stop":
        cluster.stop()
        print("cluster: stopped")
    elif command == "status":
        for node in cluster.ports.nodes:
            pid = cluster.node_pid(node)
            print(f"{node.name}: {'running, cluster view of ' + str(cluster.members(node)) if pid else 'stopped'}")
    else:
        raise SystemExit("usage: scripts/cluster.py start | stop | status")


if __name__ == "__main__":
    main()
