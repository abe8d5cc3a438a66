"""Configuration: IDENTITY_* environment variables, documented in one place."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from identity import config, create_app

ROOT = config.ROOT


def test_every_setting_is_documented():
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [s.name for s in config.SETTINGS if f"`IDENTITY_{s.name}`" not in doc]
    assert missing == []
    # The page is generated: stale means someone changed a setting without rerunning it.
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "config-doc.py"), "--check"])
    assert result.returncode == 0, "run scripts/config-doc.py"


def test_environment_overrides_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("IDENTITY_KEYCLOAK_REALM", "elsewhere")
    monkeypatch.setenv("IDENTITY_KEYCLOAK_TIMEOUT", "3")
    monkeypatch.setenv("IDENTITY_KEYCLOAK_ADMIN_CLIENT_SECRET", "12345")
    monkeypatch.setenv("IDENTITY_DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("IDENTITY_KEYCLOAK_URL", "http://kc.internal:8080/")
    app = create_app()
    assert app.config["KEYCLOAK_REALM"] == "elsewhere"
    assert app.config["KEYCLOAK_TIMEOUT"] == 3
    assert app.config["KEYCLOAK_ADMIN_CLIENT_SECRET"] == "12345"  # stays a string
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/x.db"
    assert app.config["KEYCLOAK_URL"] == "http://kc.internal:8080"
    assert app.config["KEYCLOAK_PUBLIC_URL"] == "http://127.0.0.1:8000"  # one origin: the public base URL


def test_hash_key_from_file(tmp_path):
    key_file = tmp_path / "hash-key"
    key_file.write_bytes(b"file-key\n")
    assert config.legacy_hash_key({"LEGACY_HASH_KEY": None, "LEGACY_HASH_KEY_FILE": str(key_file)}) == b"file-key"
    assert config.legacy_hash_key({"LEGACY_HASH_KEY": "env-key", "LEGACY_HASH_KEY_FILE": None}) == b"env-key"
    assert config.legacy_hash_key({"LEGACY_HASH_KEY": None, "LEGACY_HASH_KEY_FILE": None}) is None


def test_bad_default_scheme_fails_at_start(tmp_path):
    import pytest

    from identity.legacy.hashes import InvalidScheme

    with pytest.raises(InvalidScheme):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "LEGACY_DEFAULT_SCHEME": "rot13;encoding=hex"})


def test_legacy_settings_from_config(tmp_path):
    key_file = tmp_path / "hash-key"
    key_file.write_text("from-file\n")
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "LEGACY_HASH_KEY": None,
                      "LEGACY_HASH_KEY_FILE": str(key_file), "LEGACY_DEFAULT_SCHEME": "sha256;encoding=base64"})
    settings = app.extensions["legacy"]
    assert settings.hash_key == b"from-file"
    assert settings.scheme.digest == "sha256" and settings.scheme.encoding == "base64"
    assert "from-file" not in repr(settings.context())


def test_hash_key_set_twice_refuses_to_start(tmp_path):
    # var/dev.env sets the variable: an operator's file beside it must not be silently ignored.
    key_file = tmp_path / "hash-key"
    key_file.write_bytes(b"file-key\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDENTITY_")}
    env.update(IDENTITY_DATABASE_URL=f"sqlite:///{tmp_path}/x.db", IDENTITY_LEGACY_HASH_KEY="env-key-value",
               IDENTITY_LEGACY_HASH_KEY_FILE=str(key_file))
    result = subprocess.run([str(Path(sys.executable).parent / "identity"), "db", "current"],
                            env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip() == ("identity: IDENTITY_LEGACY_HASH_KEY and IDENTITY_LEGACY_HASH_KEY_FILE are both "
                                     "set: set one of them")
    assert "env-key-value" not in result.stderr and "file-key" not in result.stderr


def test_failpoints_are_out_of_reach_of_the_environment(monkeypatch, tmp_path):
    import pytest

    # Crash injection is for the tests' own configuration only: production configuration is the
    # environment, and a failpoint set there refuses to start instead of crashing sign-ins.
    monkeypatch.setenv("IDENTITY_FAILPOINTS", '["before_commit"]')
    with pytest.raises(config.ConfigurationError, match="IDENTITY_FAILPOINTS"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    monkeypatch.delenv("IDENTITY_FAILPOINTS")
    with pytest.raises(config.ConfigurationError, match="FAILPOINTS"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "FAILPOINTS": frozenset({"before_commit"})})
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "TESTING": True,
                      "FAILPOINTS": frozenset({"before_commit"})})
    assert app.config["FAILPOINTS"] == frozenset({"before_commit"})
    assert create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}).config["FAILPOINTS"] == frozenset()
