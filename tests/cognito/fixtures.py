"""Sign-in fixtures (a plugin of tests/conftest.py): a live service on a loopback port, a confidential app client, SMTP, legacy users."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import boto3
import pytest
import requests
import sqlalchemy as sa
from botocore import UNSIGNED
from botocore.config import Config
from keycloak.exceptions import KeycloakError
from werkzeug.serving import make_server

from identity import create_app
from identity.db import db
from identity.legacy import hashes
from identity.legacy.models import LegacyUser, MigrationState
from tests.conftest import ROOT, SECRET_CLIENT, TEST_REALM, create_user, make_config
from tests.used_secrets import remember, remember_code


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def secret_client(realm) -> str:
    """The confidential app client's secret: declared to the bootstrap, which made the client in the test realm."""
    return realm.app_client_secrets[SECRET_CLIENT]


def live_app(realm, database_url, port: int, **overrides):
    # Every test's client is 127.0.0.1, and the per-address count is shared through the database: the
    # suite's refusals add up past production's limit. Tests of that limit set their own.
    overrides.setdefault("IP_FAILURE_LIMIT", 1000)
    return create_app(make_config(realm, database_url, PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                                  SECRET_KEY="cognito-test-secret-key", **overrides))


class Mailbox:
    """A real SMTP server on loopback (aiosmtpd); tests read the codes from what it received.

    The service mails in the background, after its answer: `next_to` and `code_for` wait for a
    message not handed out before, so a test never reads the previous code as the new one."""

    def __init__(self):
        self.messages = []
        self.delay = 0.0      # seconds each delivery takes (a slow mail server)
        self._handed = {}     # address -> how many of its messages tests have read
        self._arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        import asyncio
        import email
        import email.policy

        if self.delay:
            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(("plain",))
        for code in re.findall(r"\b\d{6}\b", body.get_content() if body else ""):
            remember_code(code)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 OK"

    def to(self, address: str) -> list:
        return [m for m in list(self.messages) if m["To"] == address]

    def last_to(self, address: str):
        found = self.to(address)
        return found[-1] if found else None

    def next_to(self, address: str, timeout: float = 15):
        """The newest message to `address` that no test has read yet, waiting for one to arrive."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.to(address)) <= self._handed.get(address, 0):
                left = deadline - time.monotonic()
                assert left > 0, f"no new mail to {address}"
                self._arrived.wait(left)
            found = self.to(address)
            self._handed[address] = len(found)
            return found[-1]

    @staticmethod
    def code_of(message) -> str:
        return re.search(r"\b(\d{6})\b", message.get_content()).group(1)

    def code_for(self, address: str) -> str:
        return self.code_of(self.next_to(address))


def settle_mail(live_service) -> None:
    """Wait until the live service has sent (or failed to send) every mail it was asked for."""
    service = live_service["app"].extensions["cognito"].service
    getattr(service.mailer, "drain", lambda: None)()


@pytest.fixture(scope="session")
def smtp():
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    mailbox.port = controller.port
    yield mailbox
    controller.stop()


@pytest.fixture(scope="session")
def live_service(app, realm, database_url, secret_client, smtp, dev_env, live_port, live_socket):
    port = live_port  # the realm's browser flow already names this port as the bridge's
    service_app = live_app(realm, database_url, port, APP_CLIENT_SECRETS={SECRET_CLIENT: secret_client},
                           LOCKOUT_THRESHOLD=5, IP_FAILURE_LIMIT=1000, SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port,
                           BRIDGE_SECRET=dev_env["IDENTITY_BRIDGE_SECRET"])
    live_socket.listen(128)
    server = make_server("127.0.0.1", port, service_app, threaded=True, fd=live_socket.fileno())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{port}", "app": service_app,
           "issuer": f"http://127.0.0.1:{port}/cn-north-1_china", "secret": secret_client}
    server.shutdown()


@pytest.fixture
def cognito(live_service):
    return boto3.client("cognito-idp", region_name="cn-north-1", endpoint_url=live_service["url"],
                        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}))


@pytest.fixture
def legacy_user(app, master_admin):
    """A Kii user as the import leaves one: in Keycloak without a password, its hash pending in the store."""
    made = []

    def make(password: str = "Kii-Old-Pass-1", state=MigrationState.pending, disabled=False, email=None,
             phone=None, encoded: str | None = None) -> dict:
        master_admin.change_current_realm(TEST_REALM)
        kii_id = f"kii-{uuid.uuid4().hex[:12]}"
        username = f"legacy-{uuid.uuid4().hex[:10]}"
        attributes = {"kii_user_id": [kii_id], "migration_state": [state.value],
                      "migration_state_changed_at": [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())]}
        if phone:
            attributes["phone_number"] = [phone]
        user_id = create_user(master_admin, {"username": username, "enabled": not disabled, "email": email,
                                             "emailVerified": bool(email), "attributes": attributes})
        if encoded is None:
            encoded = "$sha256$" + hashes.b64encode(hashlib.sha256(password.encode()).digest())
        with app.app_context():
            db.session.add(LegacyUser(kii_user_id=kii_id, keycloak_user_id=user_id, username=username, email=email,
                                      phone_number=phone, disabled=disabled, state=state,
                                      password_hash=None if state != MigrationState.pending else encoded))
            db.session.commit()
        made.append((kii_id, user_id))
        remember(password, encoded, encoded.rsplit("$", 1)[-1])
        return {"kii_user_id": kii_id, "id": user_id, "username": username, "password": password}

    yield make
    master_admin.change_current_realm(TEST_REALM)
    with app.app_context():
        for kii_id, user_id in made:
            db.session.execute(sa.delete(LegacyUser).where(LegacyUser.kii_user_id == kii_id))
            try:
                master_admin.delete_user(user_id)
            except KeycloakError as exc:
                if exc.response_code != 404:  # a test may have deleted its user; any other failure is one
                    raise
        db.session.commit()


def store_row(app, kii_user_id: str) -> LegacyUser:
    with app.app_context():
        db.session.rollback()
        row = db.session.get(LegacyUser, kii_user_id)
        db.session.expunge_all()
        return row


@pytest.fixture
def start_gunicorn(realm, database_url, tmp_path, app):
    """Start the service under gunicorn (config/gunicorn.conf.py) with N workers; stopped after the test."""
    started = []

    def start(workers: int = 4, **overrides) -> dict:
        port = free_port()
        config = make_config(realm, database_url, PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                             SECRET_KEY="gunicorn-test-secret", IP_FAILURE_LIMIT=10000, **overrides)
        env = {**os.environ, **{f"IDENTITY_{k}": v if isinstance(v, str) else json.dumps(v)
                               for k, v in config.items() if k != "TESTING"},
               "IDENTITY_BIND": f"127.0.0.1:{port}", "IDENTITY_WORKERS": str(workers), "IDENTITY_LOG_LEVEL": "INFO"}
        log = tmp_path / f"gunicorn-{port}.log"
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "--config", str(ROOT / "config" / "gunicorn.conf.py"),
             "--error-logfile", str(log), "identity:create_app()"], env=env, cwd=ROOT, start_new_session=True)
        started.append(process)
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        return {"url": f"http://127.0.0.1:{port}", "log": log, "process": process}

    yield start
    for process in started:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
