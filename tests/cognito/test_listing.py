"""ListUsers' Filter and the listings' tokens (identity.cognito.listing): each form Cognito takes, and the
malformed ones refused as Cognito refuses them. End to end: tests/cognito/test_admin_users.py and
tests/cognito/test_list_users_mariadb.py."""

from __future__ import annotations

import pytest

from identity.cognito import errors
from identity.cognito.listing import NO_FILTER, Filter, offset, page_size, parse_filter, position, token


@pytest.mark.parametrize("text,expected", [
    ('email = "a@example.com"', Filter("email", "eq", "a@example.com")),
    ('email^="a"', Filter("email", "prefix", "a")),
    ('  username ^= "Kii-User"  ', Filter("username", "prefix", "Kii-User")),
    ('phone_number = "+8613800138000"', Filter("phone_number", "eq", "+8613800138000")),
    ('family_name = "O\\"Brien"', Filter("family_name", "eq", 'O"Brien')),
    ('name = "张三"', Filter("name", "eq", "张三")),
    ('status = "Disabled"', Filter("status", "eq", "Disabled")),
    ('sub = ""', Filter("sub", "eq", "")),
    ("", NO_FILTER), ("   ", NO_FILTER), (None, NO_FILTER),
])
def test_filters(text, expected):
    assert parse_filter(text) == expected


@pytest.mark.parametrize("text", [
    'email = a@example.com', 'email == "a"', 'email ~= "a"', '"a" = email', 'email = "a" and name = "b"',
    'email = "a', 'custom:plan = "x"', 'cognito:user_status = "CONFIRMED"', 'status ^= "En"',
    'status = "enabled"', 'locale = "zh"', 'email = "' + "x" * 256 + '"',
])
def test_malformed_filters(text):
    with pytest.raises(errors.InvalidParameterError):
        parse_filter(text)


def test_tokens():
    assert position(token("scale-00059")) == "scale-00059"
    assert position(token("名字")) == "名字"
    assert position(None) is None
    assert offset(token("120")) == 120 and offset(None) == 0
    for bad in ("not-a-token", "%%%", token("x")[:-1] + "!"):
        with pytest.raises(errors.InvalidParameterError):
            position(bad)
    with pytest.raises(errors.InvalidParameterError):
        offset(token("-5"))
    assert page_size(None) == 60 and page_size(0) == 60 and page_size(7) == 7
