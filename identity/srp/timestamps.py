"""TIMESTAMP of the PASSWORD_VERIFIER answer: "EEE MMM d HH:mm:ss UTC yyyy", read strictly.

The clients write the day without a leading zero and the time zero-padded, in English, in UTC;
anything else did not come from them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from identity.srp.errors import MalformedTimestamp, TimestampOutOfRange

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TIMESTAMP = re.compile(r"(?P<wd>[A-Z][a-z]{2}) (?P<mon>[A-Z][a-z]{2}) (?P<day>[1-9]|[12]\d|3[01]) "
                        r"(?P<h>[01]\d|2[0-3]):(?P<m>[0-5]\d):(?P<s>[0-5]\d) UTC (?P<y>\d{4})")


def format_timestamp(moment: datetime) -> str:
    m = moment.astimezone(timezone.utc)
    return f"{WEEKDAYS[m.weekday()]} {MONTHS[m.month - 1]} {m.day} {m:%H:%M:%S} UTC {m.year}"


def parse_timestamp(text: str) -> datetime:
    found = _TIMESTAMP.fullmatch(text) if isinstance(text, str) else None
    if not found or found["mon"] not in MONTHS or found["wd"] not in WEEKDAYS:
        raise MalformedTimestamp("TIMESTAMP is not in the clients' format")
    try:
        moment = datetime(int(found["y"]), MONTHS.index(found["mon"]) + 1, int(found["day"]),
                          int(found["h"]), int(found["m"]), int(found["s"]), tzinfo=timezone.utc)
    except ValueError:
        raise MalformedTimestamp("TIMESTAMP names no such day") from None
    if WEEKDAYS[moment.weekday()] != found["wd"]:
        raise MalformedTimestamp("TIMESTAMP's weekday does not match its date")
    return moment


def check_timestamp(text: str, now: datetime, tolerance: timedelta) -> datetime:
    """The client's TIMESTAMP, refused when further than `tolerance` from `now`, either way."""
    moment = parse_timestamp(text)
    if abs(moment - now) > tolerance:
        raise TimestampOutOfRange("TIMESTAMP is outside the accepted clock skew")
    return moment
