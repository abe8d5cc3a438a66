"""Mixed Cognito traffic for locust (scripts/bench_load.py runs it headless).

Each simulated app signs in once as a migrated user, then loops: native sign-ins, refreshes and
GetUser, with now and then the first sign-in of a Kii user who has not signed in yet (its legacy
hash checked, its password moved into Keycloak). Users come from LOAD_USERS (a JSON file written by
bench_load.py): {"migrated": [[login, password], ...], "pending": [[login, password], ...]}.

Every non-200 answer is a failure named by its Cognito error type (TooManyRequestsException,
InternalErrorException, ...); a request that gets no answer within LOAD_TIMEOUT seconds is a
failure named "timeout".
"""

from __future__ import annotations

import json
import os
import random
from collections import deque

from locust import FastHttpUser, between, task

USERS = json.loads(open(os.environ["LOAD_USERS"], encoding="utf-8").read())
MIGRATED = [tuple(u) for u in USERS["migrated"]]
PENDING = deque(tuple(u) for u in USERS["pending"])
TIMEOUT = float(os.environ.get("LOAD_TIMEOUT", "10"))
CLIENT_ID = os.environ.get("LOAD_CLIENT_ID", "mobile")


class App(FastHttpUser):
    wait_time = between(0, 0.05)
    network_timeout = TIMEOUT
    connection_timeout = TIMEOUT

    def call(self, operation: str, body: dict, name: str | None = None) -> dict | None:
        with self.client.post("/", data=json.dumps(body), name=name or operation, catch_response=True,
                              headers={"X-Amz-Target": f"AWSCognitoIdentityProviderService.{operation}",
                                       "Content-Type": "application/x-amz-json-1.1"}) as response:
            if response.status_code == 200:
                return response.json()
            if response.status_code == 0:
                response.failure("timeout" if "timed out" in str(response.error).lower() else "connection")
                return None
            try:
                response.failure(response.json().get("__type", f"HTTP {response.status_code}"))
            except ValueError:
                response.failure(f"HTTP {response.status_code}")
            return None

    def sign_in(self, login: str, password: str, name: str) -> dict | None:
        result = self.call("InitiateAuth", {"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": CLIENT_ID,
                                            "AuthParameters": {"USERNAME": login, "PASSWORD": password}}, name)
        return result["AuthenticationResult"] if result else None

    def on_start(self):
        self.tokens = None
        while self.tokens is None:
            self.tokens = self.sign_in(*random.choice(MIGRATED), name="InitiateAuth (native)")

    @task(4)
    def native_sign_in(self):
        tokens = self.sign_in(*random.choice(MIGRATED), name="InitiateAuth (native)")
        self.tokens = tokens or self.tokens

    @task(1)
    def first_login(self):
        if not PENDING:
            return self.native_sign_in()
        login, password = PENDING.popleft()
        if self.sign_in(login, password, name="InitiateAuth (first login)") is not None:
            MIGRATED.append((login, password))

    @task(4)
    def refresh(self):
        self.call("InitiateAuth", {"AuthFlow": "REFRESH_TOKEN_AUTH", "ClientId": CLIENT_ID,
                                   "AuthParameters": {"REFRESH_TOKEN": self.tokens["RefreshToken"]}},
                  name="InitiateAuth (refresh)")

    @task(4)
    def get_user(self):
        self.call("GetUser", {"AccessToken": self.tokens["AccessToken"]})
