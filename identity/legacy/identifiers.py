"""What a typed USERNAME may be (a loginName, an email, a phone number), as every look-up of a user reads it."""

from __future__ import annotations

import phonenumbers


def normalise_identifiers(username: str) -> dict:
    """What a typed USERNAME may be: a loginName, an email or a phone number."""
    text = username.strip()
    found = {"username": text.lower()}
    if "@" in text:
        found["email"] = text.lower()
    digits = text.replace(" ", "").replace("-", "")
    if digits.lstrip("+").isdigit() and len(digits) >= 7:
        try:
            number = phonenumbers.parse(digits, "CN")
            if phonenumbers.is_valid_number(number):
                found["phone"] = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        except phonenumbers.NumberParseException:
            pass
    return found
