"""Fixtures of the Keycloak tests (the login page, the console)."""

from __future__ import annotations

import pytest

from tests.conftest import TEST_REALM


@pytest.fixture
def support_agent(realm, kc_user, master_admin):
    """A member of support-staff, as an administrator makes one: a password, no authenticator app yet
    (in the realm this session bootstrapped: its mail goes to this session's SMTP server)."""
    agent = kc_user(password="Support-Agent-Pass-1", email="agent@example.com", emailVerified=True,
                    firstName="Li", lastName="Support")
    master_admin.change_current_realm(TEST_REALM)
    group = next(g for g in master_admin.get_groups({"search": "support-staff"}) if g["name"] == "support-staff")
    master_admin.group_user_add(agent["id"], group["id"])
    return agent
