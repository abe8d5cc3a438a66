"""One owner of Keycloak (issue 15, step 1): only identity/keycloak/ says anything to Keycloak.

Outside that package no module writes a Keycloak URL path (the Admin API, the OpenID Connect
endpoints, the project's provider, a realm's path built from its name), calls python-keycloak's raw
HTTP methods or a Keycloak object's private ones, or imports python-keycloak. Read from the source
(strings and imports, not docstrings or comments): no servers.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

IDENTITY = Path(__file__).resolve().parents[2] / "identity"
OWNER = IDENTITY / "keycloak"

# "{}" stands for whatever an f-string or a format template puts there (a realm's name, say).
PATHS = re.compile(r"admin/realms|protocol/openid-connect|attack-detection|legacy-migration"
                   r"|realms/\{|realms/$")
RAW_CALLS = {"raw_get", "raw_post", "raw_put", "raw_delete"}


def outside_modules():
    for path in sorted(IDENTITY.rglob("*.py")):
        if OWNER not in path.parents:
            yield path


def docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def strings(tree: ast.AST):
    """(line, text) of each string the module builds; an f-string's values read as "{}"."""
    skip = docstrings(tree)
    inside_fstring = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = ""
            for part in node.values:
                if isinstance(part, ast.Constant):
                    inside_fstring.add(id(part))
                    text += str(part.value)
                else:
                    text += "{}"
            yield node.lineno, text
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in skip and id(node) not in inside_fstring:
            yield node.lineno, node.value


def findings(source: str, where: str) -> list[str]:
    tree = ast.parse(source, where)
    found = [f"{where}:{line}: Keycloak path {text!r}" for line, text in strings(tree) if PATHS.search(text)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else []
        else:
            names = []
        found += [f"{where}:{node.lineno}: imports {name}" for name in names
                  if name == "keycloak" or name.startswith("keycloak.")]
        if isinstance(node, ast.Attribute):
            if node.attr in RAW_CALLS:
                found.append(f"{where}:{node.lineno}: python-keycloak's {node.attr}")
            elif node.attr.startswith("_") and not node.attr.startswith("__") \
                    and isinstance(node.value, ast.Attribute) and node.value.attr == "oidc":
                found.append(f"{where}:{node.lineno}: the Keycloak client's private {node.attr}")
    return found


def test_the_scan_sees_what_it_looks_for():
    sample = ('"""admin/realms/x in a note is no call."""\n'
              'import keycloak\nfrom keycloak.exceptions import KeycloakGetError\n'
              'a = f"admin/realms/{realm}/users"\nb = f"{base}/realms/{realm}"\nc = "/realms/" + realm\n'
              'd = admin.connection.raw_delete(x)\ne = service.oidc._call("GET", url)\n'
              '# f"/protocol/openid-connect/auth" in a comment is no call\n'
              'f = "/realms/<realm>/.well-known/jwks.json"  # the service\'s own route\n')
    assert sorted(findings(sample, "sample.py")) == sorted([
        "sample.py:2: imports keycloak", "sample.py:3: imports keycloak.exceptions",
        "sample.py:4: Keycloak path 'admin/realms/{}/users'", "sample.py:5: Keycloak path '{}/realms/{}'",
        "sample.py:6: Keycloak path '/realms/'", "sample.py:7: python-keycloak's raw_delete",
        "sample.py:8: the Keycloak client's private _call"])


def test_only_identity_keycloak_speaks_to_keycloak():
    found = [line for path in outside_modules()
             for line in findings(path.read_text(encoding="utf-8"), str(path.relative_to(IDENTITY.parent)))]
    assert found == []
