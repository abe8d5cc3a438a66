"""The real Cognito clients (tests/clients/js): their npm packages, installed once per session from the lockfile."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.secrets_scan import keep

JS = Path(__file__).resolve().parent / "js"


@pytest.fixture(scope="session")
def client_scripts() -> Path:
    """The Node project, with node_modules as package-lock.json pins it (`npm ci` when missing or older)."""
    installed = JS / "node_modules" / ".package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < (JS / "package-lock.json").stat().st_mtime:
        npm = shutil.which("npm")
        assert npm, "npm (Node 20) is needed for the client tests"
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS, capture_output=True, text=True,
                              timeout=600)
        keep("npm ci", done.stdout, done.stderr)
        assert done.returncode == 0, done.stderr[-3000:]
    return JS
