"""ListUsers' Filter and the pagination tokens of the admin listings. No Flask here.

A Filter is Cognito's `attribute = "value"` (exact) or `attribute ^= "value"` (prefix), one attribute,
`\\"` for a quote inside the value. What each attribute is in Keycloak, and which index serves it, is
the provider's (keycloak_spi_bridge UserPages); docs/admin-api.md lists them.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import NamedTuple

from identity.cognito import errors

FILTER = re.compile(r'^\s*([A-Za-z_:]+)\s*(\^=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')
SEARCHABLE = frozenset({"username", "email", "phone_number", "name", "given_name", "family_name",
                        "preferred_username", "sub", "status"})
PAGE_SIZE = 60   # Cognito's Limit: at most 60, and 60 when absent or 0


class Filter(NamedTuple):
    field: str | None
    match: str | None
    value: str | None


NO_FILTER = Filter(None, None, None)


def parse_filter(text: str | None) -> Filter:
    """The filter a ListUsers Filter says; InvalidParameterException for one Cognito would refuse, or
    one on an attribute this service cannot search (cognito:user_status: docs/admin-api.md)."""
    if text is None or not text.strip():
        return NO_FILTER
    found = FILTER.match(text)
    if found is None:
        raise errors.InvalidParameterError("Error while parsing filter.")
    name, operator, value = found.group(1), found.group(2), re.sub(r"\\(.)", r"\1", found.group(3))
    if name not in SEARCHABLE:
        raise errors.InvalidParameterError(f"Invalid search attribute: {name}"[:200])
    if name == "status" and (operator != "=" or value not in ("Enabled", "Disabled")):
        raise errors.InvalidParameterError('The status filter is status = "Enabled" or status = "Disabled".')
    if len(value) > 255:
        raise errors.InvalidParameterError("The filter's value is longer than 255 characters.")
    return Filter(name, "eq" if operator == "=" else "prefix", value)


def page_size(limit: int | None) -> int:
    return limit or PAGE_SIZE


def token(value: str) -> str:
    """An opaque pagination token of a position (a username, an offset)."""
    return base64.urlsafe_b64encode(("1:" + value).encode()).decode().rstrip("=")


def position(text: str | None) -> str | None:
    """The position a token stands for; None without a token. InvalidParameterException for one this
    service never gave."""
    if text is None:
        return None
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    if not decoded.startswith("1:"):
        raise errors.InvalidParameterError("Invalid pagination token.")
    return decoded[2:]


def offset(text: str | None) -> int:
    found = position(text)
    if found is None:
        return 0
    if not found.isdigit() or len(found) > 9:
        raise errors.InvalidParameterError("Invalid pagination token.")
    return int(found)
