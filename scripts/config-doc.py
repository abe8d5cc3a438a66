#!/usr/bin/env python3
"""Write docs/configuration.md from identity/config.py (run after adding a setting).

    .venv/bin/python scripts/config-doc.py          # rewrite the page
    .venv/bin/python scripts/config-doc.py --check  # exit 1 when the page is stale (tests do this)
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from identity.config import SETTINGS  # noqa: E402

HEAD = """# Configuration

Every setting is an environment variable `IDENTITY_<NAME>`, read by Flask's
`from_prefixed_env` in `identity/config.py`, the one place the defaults live;
this page is generated from it by `scripts/config-doc.py` (a test fails when
it is stale). Values that parse as JSON are parsed (`5` is a number, `["a"]`
a list); secrets stay strings.

Secrets (marked below) come from the environment or a secrets manager, never
from a committed file. For development `scripts/dev-env.sh` writes random ones
to `var/dev.env` (ignored by git), which `make run` and `make test` read.

| variable | default | meaning |
| --- | --- | --- |
"""

TAIL = """
## Keycloak's own settings

`scripts/keycloak.sh` reads `KC_BOOTSTRAP_ADMIN_USERNAME` / `KC_BOOTSTRAP_ADMIN_PASSWORD`
(the first master-realm admin, created only on an empty database), `KEYCLOAK_HTTP_PORT`
(8080), `KEYCLOAK_MGMT_PORT` (9000, health), and `KC_DB`, `KC_DB_URL`, `KC_DB_USERNAME`,
`KC_DB_PASSWORD` to run Keycloak on MariaDB/MySQL instead of its dev-file H2 database.
The Keycloak version is pinned in `config/keycloak-version`.

## Service process

`IDENTITY_BIND` (127.0.0.1:8000), `IDENTITY_WORKERS` (one per core, at least 2) and
`IDENTITY_WORKER_TIMEOUT` (30 s) are read by `config/gunicorn.conf.py`.

## Tests

`IDENTITY_TEST_DATABASE_URL` runs the suite against MariaDB/MySQL (CI does);
`IDENTITY_TEST_REALM` (default `china-test`) is the realm the tests create and
bootstrap, so `make run`'s realm is never touched.
"""


def render() -> str:
    rows = []
    for s in SETTINGS:
        default = s.default
        if s.name == "DATABASE_URL":
            default = "sqlite:///<checkout>/var/identity.db"
        shown = "—" if default is None else f"`{default if isinstance(default, str) else json.dumps(default)}`"
        rows.append(f"| `IDENTITY_{s.name}` | {shown} | {s.doc}{' **Secret.**' if s.secret else ''} |")
    return HEAD + "\n".join(rows) + "\n" + TAIL


if __name__ == "__main__":
    page = ROOT / "docs" / "configuration.md"
    if "--check" in sys.argv:
        sys.exit(0 if page.read_text(encoding="utf-8") == render() else 1)
    page.write_text(render(), encoding="utf-8")
