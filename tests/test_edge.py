"""The edge: what the public origin reaches (docs/hardening.md, "The edge").

Two doors lead to Keycloak from outside: the development proxy (identity/oauth/keycloak_proxy.py, on
only for `make run` and the suite's live service) and, in production, nginx running
config/nginx/templates/identity.conf.template. Both let through only the app realm's browser paths;
the admin console has its own allow-listed server block; everything else is internal. Requests are
sent raw (http.client), so dot segments and encoded slashes reach the server exactly as written.
"""

from __future__ import annotations

import getpass
import html
import http.client
import os
import re
import secrets
import signal
import ssl
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import boto3
import pytest
import requests
import yaml
from botocore import UNSIGNED
from botocore.config import Config
from werkzeug.serving import make_server

from identity import config, create_app
from tests.cognito.fixtures import free_port
from tests.cognito.test_hosted_ui import REDIRECT, pkce
from tests.conftest import ROOT, TEST_REALM, make_config

R = TEST_REALM
NGINX = "/usr/sbin/nginx"
TEMPLATE = ROOT / "config" / "nginx" / "templates" / "identity.conf.template"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PASSWORD_GRANT = urlencode({"grant_type": "password", "client_id": "mobile", "username": "nobody",
                            "password": "not-a-password", "scope": "openid"})
ADMIN_CLI_GRANT = urlencode({"grant_type": "password", "client_id": "admin-cli", "username": "admin",
                             "password": "not-a-password"})
FORM = {"Content-Type": "application/x-www-form-urlencoded"}

# Never public: Keycloak's admin console and Admin API, the master realm, other realms, the app
# realm's account console, Keycloak's own token endpoint (password grants there skip the service's
# throttles, minimum time and error mapping) and the provider's endpoint; and the same reached by
# dot segments, encoded dots, slashes and backslashes, or empty segments.
OUTSIDE = [
    ("GET", "/admin/"),
    ("GET", "/admin/master/console/"),
    ("GET", f"/admin/realms/{R}/users"),
    ("GET", "/realms/master/account/"),
    ("GET", "/realms/master/protocol/openid-connect/auth?client_id=security-admin-console"),
    ("POST", "/realms/master/protocol/openid-connect/token"),
    ("GET", "/realms/other-realm/protocol/openid-connect/auth?client_id=mobile"),
    ("GET", f"/realms/{R}/account/"),
    ("GET", f"/realms/{R}"),
    ("POST", f"/realms/{R}/protocol/openid-connect/token"),
    ("GET", f"/realms/{R}/protocol/openid-connect/certs"),
    ("POST", f"/realms/{R}/legacy-migration/users/00000000-0000-0000-0000-000000000000/password"),
    ("POST", f"/realms/{R}/legacy-migration/users/00000000-0000-0000-0000-000000000000/state"),
    ("GET", f"/realms/../admin/realms/{R}/users"),
    ("GET", "/realms/%2e%2e/admin/master/console/"),
    ("GET", f"/realms/%2E%2E/admin/realms/{R}/users"),
    ("GET", f"/realms/{R}/..%2f..%2fadmin/realms/{R}/users"),
    ("GET", f"/realms/{R}/login-actions/..%2F..%2F..%2Fadmin/master/console/"),
    ("GET", f"/realms/{R}/login-actions/..%5c..%5c..%5cadmin/master/console/"),
    ("GET", f"/realms/{R}/login-actions/..\\..\\..\\admin/master/console/"),
    ("GET", f"/realms/{R}/login-actions/%2e%2e/%2e%2e/%2e%2e/admin/master/console/"),
    ("GET", f"/realms/{R}/protocol/openid-connect/auth/../../../../admin/master/console/"),
    ("POST", f"/realms/{R}/protocol/openid-connect/auth/../token"),
    ("POST", f"/realms/{R}/login-actions/./../protocol/openid-connect/token"),
    ("GET", f"/realms/{R}//login-actions/../../master/account/"),
    ("GET", "//admin/master/console/"),
    ("GET", "/resources/../admin/master/console/"),
    ("GET", "/resources/%2e%2e/admin/master/console/"),
    ("GET", "/resources/x/..%2f..%2fadmin/master/console/"),
]


def body_for(method: str, path: str) -> str | None:
    if method != "POST":
        return None
    return ADMIN_CLI_GRANT if "/master/" in path else PASSWORD_GRANT


def raw(base: str, method: str, path: str, *, body: str | None = None, headers: dict | None = None,
        source: str | None = None, cafile: str | None = None) -> tuple[int, dict, bytes]:
    """One request with the path exactly as written (no client-side normalisation)."""
    parts = urlsplit(base)
    source_address = (source, 0) if source else None
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=15,
                                                 source_address=source_address,
                                                 context=ssl.create_default_context(cafile=cafile))
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15,
                                                source_address=source_address)
    try:
        connection.request(method, path, body=body, headers={**(FORM if body else {}), **(headers or {})})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def login_page_path(realm: str = R) -> str:
    _, challenge = pkce()
    return f"/realms/{realm}/protocol/openid-connect/auth?" + urlencode({
        "client_id": "mobile", "response_type": "code", "redirect_uri": REDIRECT, "scope": "openid",
        "state": "edge", "code_challenge": challenge, "code_challenge_method": "S256"})


# --- point 10: the development proxy -------------------------------------------------------------

@pytest.mark.parametrize("method, path", OUTSIDE)
def test_the_development_proxy_forwards_only_the_app_realms_browser_paths(live_service, method, path):
    status, headers, body = raw(live_service["url"], method, path, body=body_for(method, path))
    assert status == 404, (status, body[:200])
    # The service's own 404 (Flask's page), never Keycloak's: nothing was forwarded.
    assert b"<title>404 Not Found</title>" in body
    assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_the_development_proxy_serves_the_login_page_and_its_resources(live_service):
    status, _, body = raw(live_service["url"], "GET", login_page_path())
    assert status == 200
    page = body.decode()
    action = html.unescape(re.search(r'<form[^>]+id="kc-form-login"[^>]+action="([^"]+)"', page).group(1))
    assert action.startswith(f"{live_service['url']}/realms/{R}/login-actions/authenticate?")
    resources = re.findall(r'(?:href|src)="(/resources/[^"]+)"', page)
    assert resources
    for path in resources[:3]:
        assert raw(live_service["url"], "GET", html.unescape(path))[0] == 200, path


HOSTILE_FORWARDING = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https", "X-Forwarded-Port": "8443",
                      "X-Forwarded-Prefix": "/evil", "X-Forwarded-For": "198.51.100.7",
                      "Forwarded": "for=198.51.100.7;host=evil.example;proto=https"}


def test_the_development_proxy_drops_the_clients_forwarding_headers(live_service):
    status, _, body = raw(live_service["url"], "GET", login_page_path(), headers=HOSTILE_FORWARDING)
    assert status == 200
    page = body.decode()
    assert "evil" not in page and "8443" not in page
    assert f'action="{live_service["url"]}/realms/{R}/login-actions/authenticate?' in page


def test_the_development_proxy_is_off_unless_make_run_turns_it_on(monkeypatch):
    monkeypatch.delenv("IDENTITY_KEYCLOAK_PROXY", raising=False)
    assert next(s for s in config.SETTINGS if s.name == "KEYCLOAK_PROXY").default is False
    rules = {str(rule) for rule in create_app({"DATABASE_URL": "sqlite://"}).url_map.iter_rules()}
    assert not any(rule.startswith(("/realms/<path", "/resources/")) for rule in rules), rules
    # `make run` (scripts/serve.sh) is the one place that turns it on, unless the caller said otherwise.
    assert 'export IDENTITY_KEYCLOAK_PROXY="${IDENTITY_KEYCLOAK_PROXY:-true}"' in (
        ROOT / "scripts" / "serve.sh").read_text()


# --- point 11: nginx with the production template --------------------------------------------------

def render_template(values: dict[str, str], target: Path) -> None:
    """What the official nginx image does with /etc/nginx/templates (docker-entrypoint.d/
    20-envsubst-on-templates.sh): envsubst with every variable of its environment named."""
    shell_format = " ".join(f"${{{name}}}" for name in values)
    rendered = subprocess.run(["envsubst", shell_format], input=TEMPLATE.read_text(), env=values,
                              capture_output=True, text=True, check=True).stdout
    target.write_text(rendered)


def nginx_environment(**site) -> dict[str, str]:
    """The nginx service's environment as compose sets it, with this machine's addresses."""
    environment = dict(COMPOSE["services"]["nginx"]["environment"])
    for name in environment:
        if name not in site:
            raise AssertionError(f"the test does not set {name}, which compose gives nginx")
    return {name: str(site[name]) for name in environment}


def self_signed(directory: Path) -> Path:
    directory.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout",
                    str(directory / "tls.key"), "-out", str(directory / "tls.crt")],
                   check=True, capture_output=True)
    return directory / "tls.crt"


@pytest.fixture(scope="module")
def edge(realm, database_url, live_service, smtp, dev_env, keycloak_url, tmp_path_factory):
    """Debian's nginx running the production template in front of a service configured as deployed
    (proxy off, one trusted proxy, nginx's origin as its public URL) and the suite's Keycloak."""
    if not Path(NGINX).exists():
        pytest.fail("Debian's nginx is required (.ci/run installs nginx-light)")
    prefix = tmp_path_factory.mktemp("nginx")
    public_port, admin_port, redirect_port, service_port = (free_port() for _ in range(4))
    public = f"https://127.0.0.1:{public_port}"
    service_app = create_app(make_config(
        realm, database_url, PUBLIC_BASE_URL=public, KEYCLOAK_PROXY=False, TRUSTED_PROXIES=1,
        SECRET_KEY="edge-test-secret-key-edge-test-secret", IP_FAILURE_LIMIT=1000, SMTP_PORT=smtp.port,
        BRIDGE_SECRET=dev_env["IDENTITY_BRIDGE_SECRET"]))
    server = make_server("127.0.0.1", service_port, service_app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    cafile = self_signed(prefix / "tls")
    (prefix / "conf.d").mkdir()
    keycloak = urlsplit(keycloak_url)
    render_template(nginx_environment(
        IDENTITY_PUBLIC_HOST="127.0.0.1", IDENTITY_KEYCLOAK_REALM=R, IDENTITY_USER_POOL_ID="cn-north-1_china",
        IDENTITY_ADMIN_ALLOW="127.0.0.2",  # the suite connects from 127.0.0.1: outside the list
        NGINX_PUBLIC_LISTEN=f"127.0.0.1:{public_port}", NGINX_ADMIN_LISTEN=f"127.0.0.1:{admin_port}",
        NGINX_REDIRECT_LISTEN=f"127.0.0.1:{redirect_port}",
        NGINX_SERVICE_SERVERS=f"server 127.0.0.1:{service_port};",
        NGINX_KEYCLOAK_SERVERS=f"server {keycloak.hostname}:{keycloak.port};",
        NGINX_ACCESS_LOG=str(prefix / "access.log")), prefix / "conf.d" / "identity.conf")
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "temp" / name).mkdir(parents=True)
    # The official image's /etc/nginx/nginx.conf, reduced: the rendered template inside `http`, and
    # every file this run writes under the temporary prefix.
    user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(f"""{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/temp/body;
    proxy_temp_path {prefix}/temp/proxy;
    fastcgi_temp_path {prefix}/temp/fastcgi;
    uwsgi_temp_path {prefix}/temp/uwsgi;
    scgi_temp_path {prefix}/temp/scgi;
    include conf.d/*.conf;
}}
""")
    command = [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    subprocess.run([*command, "-g", "daemon on;"], check=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if raw(public, "GET", "/healthz", cafile=str(cafile))[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (prefix / "error.log").read_text()
            time.sleep(0.2)
        yield {"public": public, "admin": f"https://127.0.0.1:{admin_port}",
               "redirect": f"http://127.0.0.1:{redirect_port}", "cafile": str(cafile), "prefix": prefix}
    finally:
        pid = int((prefix / "nginx.pid").read_text())
        os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 10
        while (prefix / "nginx.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        server.shutdown()


@pytest.mark.parametrize("method, path", OUTSIDE + [("POST", "/bridge/v1/verify"), ("GET", "/metrics"),
                                                    ("GET", "/readyz"), ("GET", "/bridge/../metrics")])
def test_nginx_public_origin_refuses_everything_but_what_apps_and_browsers_need(edge, method, path):
    status, headers, body = raw(edge["public"], method, path, body=body_for(method, path), cafile=edge["cafile"])
    assert status == 404, (status, body[:200])
    assert b"<center>nginx</center>" in body  # nginx's own page: nothing was forwarded


def test_nginx_serves_the_login_page_login_actions_resources_and_hosted_ui(edge, kc_user):
    """A browser's whole round trip through nginx: /oauth2/authorize, Keycloak's page, its resources,
    the form's POST to login-actions, the code back to /oauth2/token, /logout."""
    user = kc_user(email="edge@example.com", emailVerified=True, password="Edge-Pass-1")
    verifier, challenge = pkce()
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment replaces `verify`
    session.verify = edge["cafile"]
    start = session.get(f"{edge['public']}/oauth2/authorize", allow_redirects=False, timeout=10, params={
        "client_id": "mobile", "response_type": "code", "redirect_uri": REDIRECT, "scope": "openid email",
        "state": "edge", "code_challenge": challenge, "code_challenge_method": "S256"})
    assert start.status_code == 302
    assert start.headers["Location"].startswith(f"{edge['public']}/realms/{R}/protocol/openid-connect/auth?")
    page = session.get(start.headers["Location"], timeout=10)
    assert page.status_code == 200
    resources = re.findall(r'(?:href|src)="(/resources/[^"]+)"', page.text)
    assert resources
    for path in resources[:3]:
        assert session.get(edge["public"] + html.unescape(path), timeout=10).status_code == 200, path
    action = html.unescape(re.search(r'<form[^>]+id="kc-form-login"[^>]+action="([^"]+)"', page.text).group(1))
    assert action.startswith(f"{edge['public']}/realms/{R}/login-actions/authenticate?")
    done = session.post(action, data={"username": user["username"], "password": "Edge-Pass-1", "credentialId": ""},
                        allow_redirects=False, timeout=10)
    assert done.status_code == 302, done.text[:300]
    code = parse_qs(urlsplit(done.headers["Location"]).query)["code"][0]
    tokens = session.post(f"{edge['public']}/oauth2/token", timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": "mobile",
        "code_verifier": verifier})
    assert tokens.status_code == 200, tokens.text
    info = session.get(f"{edge['public']}/oauth2/userInfo", timeout=10,
                       headers={"Authorization": f"Bearer {tokens.json()['access_token']}"})
    assert info.status_code == 200 and info.json()["sub"] == user["id"]
    discovery = session.get(f"{edge['public']}/cn-north-1_china/.well-known/openid-configuration", timeout=10).json()
    assert discovery["issuer"] == f"{edge['public']}/cn-north-1_china"   # Cognito's shape: {base}/{pool}
    assert session.get(discovery["jwks_uri"], timeout=10).json()["keys"]
    logout = session.get(f"{edge['public']}/logout", allow_redirects=False, timeout=10, params={"client_id": "mobile"})
    assert logout.status_code == 302
    assert logout.headers["Location"].startswith(f"{edge['public']}/realms/{R}/protocol/openid-connect/logout?")
    confirm = session.get(logout.headers["Location"], timeout=10)
    assert confirm.status_code == 200
    action = html.unescape(re.search(r'<form[^>]+action="([^"]+)"', confirm.text).group(1))
    assert action.startswith(f"/realms/{R}/protocol/openid-connect/logout/logout-confirm?")
    fields = dict(re.findall(r'<input[^>]+name="([^"]+)"[^>]+value="([^"]*)"', confirm.text))
    signed_out = session.post(edge["public"] + action, data={**fields, "confirmLogout": "Logout"}, timeout=10)
    assert signed_out.status_code == 200, signed_out.text[:300]


def test_nginx_serves_the_cognito_api(edge, kc_user):
    user = kc_user(password="Edge-Api-Pass-1")
    cognito = boto3.client("cognito-idp", region_name="cn-north-1", endpoint_url=edge["public"],
                           verify=edge["cafile"],
                           config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}))
    result = cognito.initiate_auth(AuthFlow="USER_PASSWORD_AUTH", ClientId="mobile", AuthParameters={
        "USERNAME": user["username"], "PASSWORD": "Edge-Api-Pass-1"})
    assert result["AuthenticationResult"]["AccessToken"]


def test_nginx_plain_http_only_redirects_to_the_public_host(edge):
    status, headers, _ = raw(edge["redirect"], "GET", "/admin/master/console/", headers={"Host": "evil.example"})
    assert status == 301
    assert headers["location"] == "https://127.0.0.1/admin/master/console/"


def test_nginx_sends_keycloak_the_address_it_saw_and_its_own_host(edge, kc_user, master_admin):
    """A client's X-Forwarded-For, -Host, Forwarded never reach Keycloak: its login events record the
    address nginx saw, and its pages name the public host."""
    user = kc_user(password="Edge-Xff-Pass-1")
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment replaces `verify`
    session.verify = edge["cafile"]
    session.headers.update(HOSTILE_FORWARDING)
    page = session.get(edge["public"] + login_page_path(), timeout=10)
    assert page.status_code == 200
    assert "evil" not in page.text and ":8443/" not in page.text
    action = html.unescape(re.search(r'<form[^>]+id="kc-form-login"[^>]+action="([^"]+)"', page.text).group(1))
    assert action.startswith(f"{edge['public']}/realms/{R}/login-actions/authenticate?")
    session.post(action, data={"username": user["username"], "password": "wrong-password", "credentialId": ""},
                 allow_redirects=False, timeout=10)
    master_admin.change_current_realm(R)
    deadline = time.monotonic() + 10
    while True:
        events = master_admin.connection.raw_get(f"admin/realms/{R}/events", user=user["id"],
                                                 type="LOGIN_ERROR").json()
        if events or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [event["ipAddress"] for event in events] == ["127.0.0.1"]


def test_nginx_console_block_refuses_addresses_outside_its_allow_list(edge):
    for path in ("/admin/master/console/", f"/admin/{R}/console/", "/realms/master/account/",
                 f"/realms/{R}/protocol/openid-connect/auth?client_id=security-admin-console"):
        status, _, _ = raw(edge["admin"], "GET", path, cafile=edge["cafile"])
        assert status == 403, path


def test_nginx_console_block_serves_the_console_inside_its_allow_list(edge):
    status, _, body = raw(edge["admin"], "GET", f"/admin/{R}/console/", source="127.0.0.2", cafile=edge["cafile"])
    assert status == 200 and b"keycloak" in body.lower()
    status, _, _ = raw(edge["admin"], "GET", "/admin/master/console/", source="127.0.0.2", cafile=edge["cafile"])
    assert status == 200
    # Internal even here: the provider's endpoint is the service's alone, however the path is written.
    for path in (f"/realms/{R}/legacy-migration/users/x/password", f"/realms/{R}/Legacy-Migration/users/x/password",
                 f"/realms/{R}/x/..%2flegacy-migration/users/x/password",
                 f"/resources/%2e%2e/realms/{R}/legacy-migration/users/x/password",
                 f"/realms/{R}/x/../legacy-migration/users/x/password"):
        status, _, body = raw(edge["admin"], "POST", path, body="{}", source="127.0.0.2", cafile=edge["cafile"])
        assert status == 404 and b"<center>nginx</center>" in body, path


def test_the_template_never_passes_on_a_clients_forwarded_for():
    text = TEMPLATE.read_text()
    assert "$proxy_add_x_forwarded_for" not in text
    assert re.search(r"proxy_set_header X-Forwarded-For +\$remote_addr;", text)



def test_nginx_logs_no_query_string_and_no_referer(edge):
    """An authorization code reaches the service in a query (/oauth2/idpresponse?code=...), and a page's
    address in a Referer: nginx's access log keeps the path alone."""
    marker = secrets.token_hex(8)
    status, _, _ = raw(edge["public"], "GET", f"/oauth2/idpresponse?code={marker}&state=s",
                       headers={"Referer": f"https://127.0.0.1/?code={marker}"}, cafile=edge["cafile"])
    assert status < 500
    log = (edge["prefix"] / "access.log").read_text()
    assert '"GET /oauth2/idpresponse HTTP/' in log
    assert marker not in log
