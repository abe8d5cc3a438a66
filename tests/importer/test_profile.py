"""One Kii record, validated and turned into a Keycloak user (pure functions)."""

from __future__ import annotations

import pytest

from identity.importer.profile import RecordError, keycloak_id, parse_user, to_keycloak

BASE = {"userID": "u-1", "loginName": "Alice_01", "emailAddress": "Alice@Example.com", "emailAddressVerified": True,
        "phoneNumber": "13812345678", "country": "CN", "phoneNumberVerified": "true", "_disabled": "false",
        "_hasPassword": True, "_created": 1, "_modified": 2, "displayName": "王小明🐼", "locale": "zh-CN",
        "deviceModel": "BP-200", "birthYear": 1980, "units": {"weight": "jin"}}


def test_normalises_identifiers_and_keeps_custom_attributes():
    user = parse_user(BASE, "china")
    assert user.username == "alice_01" and user.login_name == "Alice_01"
    assert user.email == "alice@example.com" and user.email_verified
    assert user.phone_number == "+8613812345678" and user.phone_verified
    assert user.disabled is False and user.has_password
    rep = to_keycloak(user)
    assert rep["id"] == keycloak_id("china", "u-1") != keycloak_id("staging", "u-1")
    assert rep["attributes"]["custom.birthYear"] == ["1980"]
    assert rep["attributes"]["custom.units"] == ['{"weight":"jin"}']
    assert rep["attributes"]["name"] == ["王小明🐼"]
    assert "credentials" not in rep


def test_utf8mb3_keycloak_gets_replacement_characters():
    rep = to_keycloak(parse_user(BASE, "china"), bmp_only=True)
    assert rep["attributes"]["name"] == ["王小明\ufffd"]


@pytest.mark.parametrize("change, reason", [
    ({"userID": None}, "missing_user_id"),
    ({"userID": "  "}, "missing_user_id"),
    ({"userID": "bad id with spaces"}, "invalid_user_id"),
    ({"loginName": "has space"}, "invalid_login_name"),
    ({"loginName": None, "phoneNumber": None, "emailAddress": "nope"}, "invalid_email"),
    ({"loginName": None, "emailAddress": None, "phoneNumber": "12"}, "invalid_phone"),
    ({"_disabled": "maybe"}, "invalid_field_type"),
    ({"_modified": "yesterday"}, "invalid_field_type"),
    ({"weird key!": 1}, "invalid_custom_attribute"),
    ({"notes": "x" * 70000}, "custom_attributes_too_large"),
])
def test_record_errors(change, reason):
    record = {**BASE, **change}
    with pytest.raises(RecordError) as info:
        parse_user({k: v for k, v in record.items() if v is not None}, "china")
    assert info.value.reason == reason


def test_invalid_email_beside_a_login_name_is_a_warning():
    user = parse_user({**BASE, "emailAddress": "broken@@x"}, "china")
    assert user.email is None and user.warnings == ["invalid_email"]
