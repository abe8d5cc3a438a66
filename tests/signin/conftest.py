"""The sign-in use case without servers: the legacy store and the address throttle on an in-memory
SQLite database, Keycloak as a small in-memory stand-in behind the same methods the use case calls.

The end-to-end suite (tests/cognito, tests/bridge) runs the same paths against the real Keycloak and
MariaDB; these tests pin each outcome and each counter in a fraction of a second.
"""

from __future__ import annotations

import base64
import hashlib
import json
import itertools
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from identity.cognito.throttle import ClientThrottle
from identity.db import db
from identity.keycloak.errors import GrantRefused, KeycloakUnavailable, PasswordRefused
from identity.legacy import hashes
from identity.legacy.credentials import LegacySettings
from identity.legacy.migration import LegacyMigration, Lockout
from identity.legacy.models import MigrationState
from identity.legacy.store import LegacyStore
from identity.locks import LockTimeout
from identity.signin.service import SignIn
from identity.signin.verifiers import KeepVerifier, Verifiers

POOL_ID = "cn-north-1_china"


def sha256_hash(password: str) -> str:
    return "$sha256$" + hashes.b64encode(hashlib.sha256(password.encode()).digest())


def token_for(user_id: str, username: str) -> str:
    """An unsigned JWT with the claims the service reads from Keycloak's answer."""
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
    return f"{part({'alg': 'none'})}.{part({'sub': user_id, 'username': username})}.sig"


class FakeKeycloak:
    """The Keycloak the use case sees: the provider's password endpoint, the user's migration state,
    and the password grant. Users by username; each holds a password or none."""

    def __init__(self):
        self.ids: dict[str, str] = {}            # username -> user id
        self.passwords: dict[str, str] = {}      # user id -> password Keycloak holds
        self.reset_there: set[str] = set()       # user ids that chose a password at Keycloak's pages
        self.disabled: set[str] = set()
        self.locked: set[str] = set()
        self.busy = False                        # Keycloak's bookkeeping never finishes
        self.down = False
        self.tickets: dict[str, str] = {}        # ticket -> user id
        self.grants: list[tuple[str, str | None]] = []   # (username, ticket) of every grant asked
        self.credentials: dict[str, str] = {}    # user id -> id of the password credential in force
        self.failed: dict[str, int] = {}         # user id -> failures counted by brute-force detection
        self.temporary: set[str] = set()         # user ids whose password is temporary (UPDATE_PASSWORD)
        self.policy_min = 8                      # the realm's password policy: a minimum length
        self.apps: dict[str, tuple[str, str]] = {}   # user id -> (secret, label) of their authenticator app
        self.setup_asked: set[str] = set()       # user ids with CONFIGURE_TOTP pending (the console asked)
        self.spent_codes: set[tuple[str, str]] = set()   # (user id, code): Keycloak takes each code once
        self._serial = itertools.count()
        self.code_checked_tickets: set[str] = set()   # tickets minted after the service checked a code

    def add(self, username: str, password: str | None = None) -> str:
        user_id = str(uuid.UUID(int=next(self._serial) + 1, version=4))
        self.ids[username] = user_id
        if password is not None:
            self.set_password(user_id, password)
        return user_id

    def set_password(self, user_id: str, password: str) -> None:
        """A password set in Keycloak (its pages, the console, the Admin API): a new credential."""
        if len(password) < self.policy_min:
            raise PasswordRefused("invalidPasswordMinLengthMessage")
        self.temporary.discard(user_id)
        self.passwords[user_id] = password
        self.credentials[user_id] = (f"cred-{next(self._serial)}", int(time.time() * 1000))

    # identity.legacy.migration.KeycloakPasswords
    def migrate_password(self, user_id, password, ticket_for):
        if self.down:
            raise KeycloakUnavailable("down")
        if user_id in self.passwords:
            return False, None
        self.set_password(user_id, password)
        if not ticket_for:
            return True, None
        ticket = f"ticket-{next(self._serial)}"
        self.tickets[ticket] = user_id
        return True, ticket

    def password_set_at_keycloak(self, user_id):
        if self.down:
            raise KeycloakUnavailable("down")
        return user_id in self.reset_there

    # identity.signin.srp.SrpKeycloak
    def find_user(self, *, username=None, email=None):
        found = self.ids.get((username or "").lower())
        return {"id": found, "username": username.lower()} if found else None

    def password_credential(self, user_id):
        if self.down:
            raise KeycloakUnavailable("down")
        found = self.credentials.get(user_id)
        return {"id": found[0], "createdDate": found[1]} if found else None

    def sign_in_ticket(self, user_id, client_id, code_checked=False):
        if self.down:
            raise KeycloakUnavailable("down")
        ticket = f"ticket-{next(self._serial)}"
        self.tickets[ticket] = user_id
        if code_checked:
            self.code_checked_tickets.add(ticket)
        return ticket
    # identity.signin.mfa.MfaKeycloak
    def right_code(self, secret: str) -> str:
        """The code an authenticator app shows now for `secret` (a stand-in for TOTP)."""
        return f"{int(hashlib.sha256(secret.encode()).hexdigest(), 16) % 1000000:06d}"

    def _take_code(self, user_id: str, secret: str, code: str) -> bool:
        if code != self.right_code(secret) or (user_id, code) in self.spent_codes:
            return False
        self.spent_codes.add((user_id, code))
        return True

    def software_tokens(self, user_id):
        if self.down:
            raise KeycloakUnavailable("down")
        return [{"id": f"otp-{user_id}", "userLabel": self.apps[user_id][1]}] if user_id in self.apps else []

    def set_software_token(self, user_id, secret, code, label):
        if self.down:
            raise KeycloakUnavailable("down")
        if not self._take_code(user_id, secret, code):
            return False
        self.apps[user_id] = (secret, label or "Authenticator app")
        self.setup_asked.discard(user_id)
        return True

    def remove_software_tokens(self, user_id):
        self.apps.pop(user_id, None)

    def record_failed_login(self, user_id):
        self.failed[user_id] = self.failed.get(user_id, 0) + 1
        if self.failed[user_id] >= 3:
            self.locked.add(user_id)

    # identity.signin.service.Grants
    def grant(self, client_id, secret, username, password, user_id=None, ticket=None, otp=None):
        self.grants.append((username, ticket))
        if self.down:
            raise KeycloakUnavailable("down")
        if client_id != "mobile":
            raise GrantRefused("client_not_allowed")
        if self.busy:
            raise GrantRefused("busy")
        found = self.ids.get(username)
        if found in self.locked:
            raise GrantRefused("locked")
        code_checked = ticket in self.code_checked_tickets
        right = ticket is not None and self.tickets.pop(ticket, None) == found or \
            found is not None and self.passwords.get(found) == password
        if not right:
            raise GrantRefused("credentials")
        if found in self.apps and not code_checked:
            if otp is None:
                raise GrantRefused("mfa_required", user_id=found)
            if not self._take_code(found, self.apps[found][0], otp):
                self.failed[found] = self.failed.get(found, 0) + 1
                raise GrantRefused("code_mismatch")
        if found in self.disabled:
            raise GrantRefused("disabled")
        if found in self.temporary:
            raise GrantRefused("new_password_required", user_id=found)
        if found in self.setup_asked:
            raise GrantRefused("mfa_setup", user_id=found)
        return {"access_token": token_for(found, username), "refresh_token": f"refresh-{found}", "id_token": "id"}


class Locks:
    """The per-user sign-in lock, within one process; `held` names a lock another sign-in holds."""

    def __init__(self):
        self.taken: list[str] = []
        self.held: set[str] = set()
        self._lock = threading.Lock()

    @contextmanager
    def __call__(self, name: str):
        if name.lower() in self.held:
            raise LockTimeout(name)
        with self._lock:
            self.taken.append(name.lower())
            yield


class Clock:
    """The use cases' clock (an aware UTC now), moved by the test."""

    def __init__(self):
        self.now = datetime.now(timezone.utc)

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def engine():
    from identity import audit  # noqa: F401  (every table the use case writes)
    from identity.cognito import models as cognito_models  # noqa: F401
    from identity.legacy import models as legacy_models  # noqa: F401
    from identity.signin import models as signin_models  # noqa: F401

    engine = sa.create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    db.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def keycloak():
    return FakeKeycloak()


@pytest.fixture
def locks():
    return Locks()


@pytest.fixture
def store(engine):
    return LegacyStore(engine)


@pytest.fixture
def throttle(engine):
    return ClientThrottle(engine, limit=3, window_seconds=600)


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def verifiers(engine):
    return Verifiers(engine, POOL_ID, b"m" * 32)


@pytest.fixture
def sign_in(store, keycloak, throttle, locks, sleeps, verifiers):
    # The verifier at its lowest cost: a wrong password still runs a dummy argon2 check.
    legacy = LegacySettings(hash_key=None, default_scheme=None, layer_time_cost=1, layer_memory_kib=8)
    migration = LegacyMigration(store, legacy, keycloak, lockout=Lockout(threshold=3, base_seconds=60))
    return SignIn(migration, keycloak, throttle, locks, failure_floor_s=0.25, sleep=sleeps.append,
                  password_seen=KeepVerifier(verifiers, keycloak))


@pytest.fixture
def kii_user(store, keycloak):
    """A Kii user as the import leaves one: in Keycloak without a password, the hash pending here."""
    serial = itertools.count()

    def make(password: str = "Kii-Pass-1", state: MigrationState = MigrationState.pending, disabled=False,
             email: str | None = None) -> dict:
        n = next(serial)
        username = f"kii-user-{n}"
        user_id = keycloak.add(username)
        row = {"kii_user_id": f"kii-{n}", "keycloak_user_id": user_id, "username": username,
               "email": email, "password_hash": sha256_hash(password) if state == MigrationState.pending else None,
               "state": state, "disabled": disabled}
        with store.engine.begin() as conn:
            store.insert(conn, [row])
        return {**row, "password": password}

    return make
