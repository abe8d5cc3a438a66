"""Deployment files reference only files, stages, services and variables that exist (no Docker here)."""

from __future__ import annotations

import re

import yaml

from identity import config, create_app
from tests.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
NGINX = (ROOT / "config" / "nginx" / "templates" / "identity.conf.template").read_text()
ENV_EXAMPLE = (ROOT / "deploy.env.example").read_text()
OPERATOR_FILES = (ROOT / "deploy" / "README.md").read_text()
PROCESS_SETTINGS = {"BIND", "WORKERS", "THREADS", "WORKER_TIMEOUT"}  # read by config/gunicorn.conf.py


def stages() -> set[str]:
    return set(re.findall(r"^FROM \S+ AS (\S+)", DOCKERFILE, re.M))


def test_dockerfile_copies_existing_files_and_pins_keycloak():
    for source in re.findall(r"^COPY (?!--from)(?:--chown=\S+ )?(\S+)", DOCKERFILE, re.M):
        assert (ROOT / source).exists(), source
    version = re.search(r"^ARG KEYCLOAK_VERSION=(\S+)", DOCKERFILE, re.M).group(1)
    assert version == (ROOT / "config" / "keycloak-version").read_text().strip()
    assert {"keycloak", "service"} <= stages()
    assert DOCKERFILE.rstrip().splitlines()[-1].startswith("CMD") and "USER identity" in DOCKERFILE


def test_compose_builds_existing_targets_and_mounts_existing_files():
    for name, service in COMPOSE["services"].items():
        build = service.get("build")
        if build:
            assert (ROOT / build["context"]).is_dir()
            assert build["target"] in stages(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                path = source[2:]
                assert (ROOT / path).exists() or path in OPERATOR_FILES, f"{name}: {source}"
    for secret in COMPOSE["secrets"].values():
        assert secret["file"][2:] in OPERATOR_FILES


def test_compose_variables_are_documented_and_settings_exist():
    text = (ROOT / "docker-compose.yml").read_text()
    for variable in set(re.findall(r"\$\{([A-Z0-9_]+)", text)):
        assert re.search(rf"^{variable}=", ENV_EXAMPLE, re.M), f"{variable} missing from deploy.env.example"
    known = {s.name for s in config.SETTINGS} | PROCESS_SETTINGS
    for service in COMPOSE["services"].values():
        for key in (service.get("environment") or {}):
            if key.startswith("IDENTITY_") and service.get("build", {}).get("target") == "service":
                assert key[len("IDENTITY_"):] in known, key
    for name, service in COMPOSE["services"].items():
        for dependency in service.get("depends_on", {}):
            assert dependency in COMPOSE["services"], f"{name} depends on {dependency}"


def test_nginx_routes_to_compose_services_and_existing_paths():
    environment = COMPOSE["services"]["nginx"]["environment"]
    for upstream in re.findall(r"server \$\{(\w+)\};", NGINX):
        host, _, port = environment[upstream].partition(":")
        assert host in COMPOSE["services"] and port.isdigit(), upstream
    for upstream in re.findall(r"proxy_pass http://(\w+);", NGINX):
        assert re.search(rf"upstream {upstream} {{", NGINX), upstream
    for variable in set(re.findall(r"\$\{([A-Z_]+)\}", NGINX)):
        assert variable in COMPOSE["services"]["nginx"]["environment"], variable
    routes = {str(rule) for rule in create_app({"DATABASE_URL": "sqlite://"}).url_map.iter_rules()}
    for path in ("/", "/oauth2/authorize", "/oauth2/token", "/logout", "/healthz",
                 "/<pool>/.well-known/jwks.json", "/<pool>/.well-known/openid-configuration"):
        assert path in routes, path
    # What the public server lets through is held by tests/test_edge.py, with nginx running this file.


def test_production_sets_its_own_redirect_uris_and_console_allow_list():
    """L5: compose never falls back to the development redirect URIs; the console's allow-list has
    no default either."""
    service_env = COMPOSE["x-service-env"]
    assert service_env["IDENTITY_KEYCLOAK_APP_REDIRECT_URIS"] == "${IDENTITY_KEYCLOAK_APP_REDIRECT_URIS:?}"
    assert service_env["IDENTITY_KEYCLOAK_PROXY"] == "false"
    assert COMPOSE["services"]["nginx"]["environment"]["IDENTITY_ADMIN_ALLOW"] == "${IDENTITY_ADMIN_ALLOW:?}"
