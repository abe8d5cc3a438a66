"""Importer fixtures: a fresh realm and an empty store per test, and generated exports."""

from __future__ import annotations

import importlib.util
import json
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from identity import create_app
from identity.db import db
from identity.importer.models import ImportHash, ImportProfile, ImportRecord, ImportRun
from identity.keycloak.bootstrap import bootstrap
from identity.legacy.models import LegacyUser
from tests.conftest import ROOT, TEST_REALM, make_config

_spec = importlib.util.spec_from_file_location("gen_kii_export", ROOT / "scripts" / "gen_kii_export.py")
gen_kii_export = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen_kii_export)
_spec = importlib.util.spec_from_file_location("gen_cutoff", ROOT / "scripts" / "gen_cutoff.py")
gen_cutoff = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen_cutoff)


def clean_store() -> None:
    from identity.audit import AuditEvent

    for model in (ImportRecord, ImportHash, ImportProfile, ImportRun, LegacyUser, AuditEvent):
        db.session.execute(sa.delete(model))
    db.session.commit()


@pytest.fixture
def import_realm(master_admin, realm):
    settings = replace(realm, realm=f"import-{uuid.uuid4().hex[:8]}")
    bootstrap(master_admin, settings)
    master_admin.change_current_realm(settings.realm)
    yield settings
    master_admin.change_current_realm(TEST_REALM)
    master_admin.delete_realm(settings.realm)


@pytest.fixture
def export(tmp_path):
    """A generated export with every failure case (about 2% of 400 users)."""
    manifest = gen_kii_export.generate(tmp_path / "export", 400, seed=7, failure_rate=0.02)
    manifest["dir"] = tmp_path / "export"
    manifest["hash_key"] = (tmp_path / "export" / "hash-key").read_bytes().strip().decode()
    return manifest


@pytest.fixture
def import_app(import_realm, database_url, dev_env, export, app):
    config = make_config(import_realm, database_url,
                         SECRET_KEY="import-test-secret-key-0123456789abcdef",
                         # No realm administrator: the import writes through the service's own account.
                         LEGACY_HASH_KEY=export["hash_key"], LEGACY_DEFAULT_SCHEME="hmac-sha256;encoding=hex")
    import_app = create_app(config)
    import_app.config["ENV_FOR_SUBPROCESS"] = {f"IDENTITY_{k}": str(v) for k, v in config.items()
                                              if k not in ("TESTING",)}
    with import_app.app_context():
        clean_store()
        yield import_app
        db.session.rollback()
        clean_store()


def run_import(app, *args: str):
    result = app.test_cli_runner().invoke(args=["import-profiles", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def read_report(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
