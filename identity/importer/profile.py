"""One Kii user object, validated and normalised, and its Keycloak representation.

Pure functions: no Flask, no I/O. A problem that makes the record unusable
is a :class:`RecordError` with the reason code the report groups by; a
problem the user can live with (an invalid email beside a loginName) is a
warning on the :class:`KiiUser`.
"""

from __future__ import annotations

from datetime import datetime, timezone

import json
import math
import re
import uuid
from dataclasses import dataclass, field, replace

import phonenumbers
from email_validator import EmailNotValidError, validate_email

# Keycloak user ids are derived from the realm and the Kii userID, so a rerun (or a
# second delivery) always addresses the same Keycloak user: idempotence without a
# lookup. (User ids are unique across a Keycloak's realms, hence the realm.)
ID_NAMESPACE = uuid.UUID("6f1c3d0e-8b7a-5d2c-9e4f-0a1b2c3d4e5f")
RESERVED = {"userID", "internalUserID", "loginName", "displayName", "emailAddress", "emailAddressVerified",
            "phoneNumber", "phoneNumberVerified", "country", "locale"}
MAX_CUSTOM_BYTES = 63 * 1024
# Keycloak's username rules (its default "username-prohibited-characters" validator, roughly):
# no whitespace, no control characters, none of these.
USERNAME_OK = re.compile(r"[^\s<>&\"'$%!#?§,;:*~/\\|^=\[\]{}()`\x00-\x1f\x7f]{1,255}")
USER_ID_OK = re.compile(r"[A-Za-z0-9._:-]{1,64}")
CUSTOM_NAME_OK = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# What Keycloak accepts (Java string lengths, so UTF-16 code units): partialImport takes longer values,
# but every later update of the user (second delivery, an admin's edit) would then be refused.
KEYCLOAK_USERNAME_MAX = 255
KEYCLOAK_NAME_MAX = 255       # the "name" attribute's length validator (config/keycloak/user-profile.json)
KEYCLOAK_VALUE_MAX = 2048     # Keycloak's own limit for an attribute without a length validator
EPOCH_MS_MAX = 2 ** 63 - 1    # a signed 64-bit column, in the store and in Keycloak

NON_BMP = re.compile("[\U00010000-\U0010FFFF]")

FLAG_EMAIL, FLAG_PHONE, FLAG_DISABLED, FLAG_NO_PASSWORD = 1, 2, 4, 8


class RecordError(ValueError):
    def __init__(self, reason: str, kii_user_id: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.kii_user_id = kii_user_id


@dataclass
class KiiUser:
    realm: str
    kii_user_id: str
    username: str                 # Keycloak username: lower-cased loginName, else the userID
    login_name: str | None
    email: str | None
    email_verified: bool
    phone_number: str | None
    phone_verified: bool
    locale: str | None
    display_name: str | None
    disabled: bool
    has_password: bool
    created: int | None
    modified: int
    custom: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def keycloak_id(self) -> str:
        return keycloak_id(self.realm, self.kii_user_id)

    @property
    def flags(self) -> int:
        return ((FLAG_EMAIL if self.email else 0) | (FLAG_PHONE if self.phone_number else 0)
                | (FLAG_DISABLED if self.disabled else 0) | (0 if self.has_password else FLAG_NO_PASSWORD))


def keycloak_id(realm: str, kii_user_id: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f"{realm}/{kii_user_id}"))


def _bool(value, default: bool = False) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if value is None:
        return default
    raise ValueError


def _epoch_ms(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError  # 1e400 parses as infinity, and NaN: neither is a time
    if not -EPOCH_MS_MAX <= value <= EPOCH_MS_MAX:
        raise ValueError
    return int(value)


def _text(value) -> str | None:
    """An optional string field: absent, or a string."""
    if value is None or isinstance(value, str):
        return value or None
    raise ValueError


def utf16_len(value: str) -> int:
    return len(value.encode("utf-16-le", "surrogatepass")) // 2


def normalize_email(value) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError
    result = validate_email(value.strip(), check_deliverability=False, allow_smtputf8=True)
    if NON_BMP.search(result.normalized):
        raise ValueError  # Keycloak's email check takes non-ASCII, but only from the Basic Multilingual Plane
    return result.normalized.lower()


def normalize_phone(value, country) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError
    region = country.upper() if isinstance(country, str) and len(country) == 2 else None
    number = phonenumbers.parse(value, region)
    if not phonenumbers.is_valid_number(number):
        raise ValueError
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_user(record: dict, realm: str) -> KiiUser:
    """Validate and normalise one profile record, or raise RecordError(reason)."""
    user_id = _user_id(record)
    login_name, email, phone, warnings = _sign_in_identifiers(record, user_id)
    fields = _fields(record, user_id, email, phone)
    custom = _custom_attributes(record, user_id)
    return KiiUser(
        realm=realm, kii_user_id=user_id, username=(login_name or user_id).lower(), login_name=login_name, email=email,
        phone_number=phone, **fields, custom=custom, warnings=warnings)


def _user_id(record: dict) -> str:
    user_id = record.get("userID")
    if not isinstance(user_id, str) or not user_id.strip():
        raise RecordError("missing_user_id")
    user_id = user_id.strip()
    if not USER_ID_OK.fullmatch(user_id):
        raise RecordError("invalid_user_id")
    return user_id


def _sign_in_identifiers(record: dict, user_id: str) -> tuple[str | None, str | None, str | None, list[str]]:
    """(loginName, email, phone, warnings): an invalid email or phone is dropped with a warning, unless
    nothing is left to sign in with."""
    warnings = []
    login_name = record.get("loginName")
    if login_name in ("", None):
        login_name = None
    elif not isinstance(login_name, str) or not USERNAME_OK.fullmatch(login_name) \
            or utf16_len(login_name.lower()) > KEYCLOAK_USERNAME_MAX:
        raise RecordError("invalid_login_name", user_id)

    try:
        email = normalize_email(record.get("emailAddress"))
    except (EmailNotValidError, ValueError):
        email = None
        warnings.append("invalid_email")
    try:
        phone = normalize_phone(record.get("phoneNumber"), record.get("country"))
    except (phonenumbers.NumberParseException, ValueError):
        phone = None
        warnings.append("invalid_phone")
    if not (login_name or email or phone):
        # Nothing left to sign in with: the record fails under the reason that took the last identifier.
        raise RecordError(warnings[-1] if warnings else "no_sign_in_identifier", user_id)
    return login_name, email, phone, warnings


def has_password(record: dict) -> bool | None:
    """Whether the Kii user has a password; None when the field is not a boolean (the line fails)."""
    try:
        return _bool(record.get("_hasPassword"), default=True)
    except ValueError:
        return None


def _fields(record: dict, user_id: str, email: str | None, phone: str | None) -> dict:
    """The typed fields of the record, as KiiUser's keyword arguments."""
    try:
        disabled = _bool(record.get("_disabled"))
        has_password = _bool(record.get("_hasPassword"), default=True)
        email_verified = _bool(record.get("emailAddressVerified")) and email is not None
        phone_verified = _bool(record.get("phoneNumberVerified")) and phone is not None
        created = _epoch_ms(record.get("_created"))
        modified = _epoch_ms(record.get("_modified"))
        # A wrong type is reported, not dropped: the user would otherwise lose the value without a word.
        locale = _text(record.get("locale"))
        display_name = _text(record.get("displayName"))
        _text(record.get("country"))
        if utf16_len(locale or "") > KEYCLOAK_VALUE_MAX or utf16_len(display_name or "") > KEYCLOAK_NAME_MAX:
            raise ValueError
    except ValueError:
        raise RecordError("invalid_field_type", user_id) from None
    return {"email_verified": email_verified, "phone_verified": phone_verified, "locale": locale,
            "display_name": display_name, "disabled": disabled, "has_password": has_password, "created": created,
            "modified": modified if modified is not None else (created or 0)}


def _custom_attributes(record: dict, user_id: str) -> dict[str, str]:
    """The app's own fields, each as a string (JSON for other values), within Keycloak's limits."""
    custom = {}
    for key, value in record.items():
        if key.startswith("_") or key in RESERVED:
            continue
        if not CUSTOM_NAME_OK.fullmatch(key):
            raise RecordError("invalid_custom_attribute", user_id)
        try:
            custom[key] = value if isinstance(value, str) else json.dumps(
                value, ensure_ascii=False, separators=(",", ":"))
        except RecursionError:  # nested deeper than the encoder goes: no app stores that
            raise RecordError("invalid_custom_attribute", user_id) from None
        if utf16_len(custom[key]) > KEYCLOAK_VALUE_MAX:
            raise RecordError("custom_attributes_too_large", user_id)
    if len(json.dumps(custom, ensure_ascii=False).encode()) > MAX_CUSTOM_BYTES:
        raise RecordError("custom_attributes_too_large", user_id)
    return custom


def has_non_bmp(user: KiiUser) -> bool:
    values = [user.display_name or "", user.locale or "", *user.custom.values()]
    return any(NON_BMP.search(v) for v in values)


def to_keycloak(user: KiiUser, bmp_only: bool = False, state: str | None = None) -> dict:
    """The Keycloak UserRepresentation: no credentials, enabled as Kii says, and (`state`) the
    migration state the store gives the user, which admins see in the console.

    `bmp_only`: Keycloak on MySQL/MariaDB keeps names and attribute values in
    utf8mb3 columns, which cannot hold characters beyond the Basic Multilingual
    Plane (emoji, CJK Extension B); those become U+FFFD there (and the import
    warns), instead of the whole user failing.
    """
    if bmp_only:
        user = replace(user, display_name=NON_BMP.sub("\ufffd", user.display_name) if user.display_name else None,
                       locale=NON_BMP.sub("\ufffd", user.locale) if user.locale else None,
                       custom={k: NON_BMP.sub("\ufffd", v) for k, v in user.custom.items()})
    attributes = {"kii_user_id": [user.kii_user_id]}
    if state:
        attributes["migration_state"] = [state]
        attributes["migration_state_changed_at"] = [datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")]
    if user.phone_number:
        attributes["phone_number"] = [user.phone_number]
        attributes["phone_number_verified"] = ["true" if user.phone_verified else "false"]
    if user.locale:
        attributes["locale"] = [user.locale]
    if user.display_name:
        attributes["name"] = [user.display_name]
    for key, value in user.custom.items():
        attributes[f"custom.{key}"] = [value]
    representation = {
        "id": user.keycloak_id, "username": user.username, "enabled": not user.disabled,
        "emailVerified": user.email_verified, "attributes": attributes,
    }
    if user.email:
        representation["email"] = user.email
    if user.created:
        representation["createdTimestamp"] = user.created
    return representation
