"""Verify a password against a legacy hash, whatever system wrote it.

Shaped like Ory Kratos's hash comparator: :func:`verify` dispatches once on
the string's prefix to one small format class, whose ``parse`` decodes the
string into parameters and the stored digest, and whose ``derive``
recomputes the digest from a password; the comparison is
``hmac.compare_digest`` (or the library's own constant-time check).

Every way a string can be wrong raises a :class:`LegacyHashError` subclass
carrying a ``reason`` that never quotes the hash. Formats, notation and the
operator's default scheme: ``shared/spec/legacy-hashes.md``;
``docs/legacy-hashes.md`` records the choices the spec left open.

Layering (``identity legacy layer``): ``layer`` replaces a stored hash by
``$layered$<format>$<parameters>$<argon2id PHC of the legacy digest>``, so a
leaked table no longer exposes weak digests; ``verify`` derives the legacy
digest from the password as before and checks it against the argon2id layer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field

import argon2
import bcrypt as _bcrypt
from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from passlib.hash import md5_crypt, sha256_crypt, sha512_crypt

MAX_ENCODED_LENGTH = 4096
MAX_PASSWORD_BYTES = 4096


# --- errors -------------------------------------------------------------------

class LegacyHashError(Exception):
    """The hash (or the call) cannot be verified. ``reason`` never contains the hash."""

    code = "legacy_hash_error"

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class UnknownHashFormat(LegacyHashError):
    code = "unknown_hash_format"


class MalformedHash(LegacyHashError):
    code = "malformed_hash"


class MissingHashKey(LegacyHashError):
    code = "missing_hash_key"


class InvalidPassword(LegacyHashError):
    code = "invalid_password"


class InvalidScheme(LegacyHashError):
    code = "invalid_default_scheme"


# --- context ------------------------------------------------------------------

@dataclass(frozen=True)
class Scheme:
    """The operator's default scheme for bare hashes: ``<digest>;encoding=...[;template=...]``."""

    digest: str
    encoding: str
    template: str | None = None

    @classmethod
    def parse(cls, text: str) -> "Scheme":
        parts = [p.strip() for p in str(text).split(";")]
        digest, options = parts[0].lower(), {}
        for part in parts[1:]:
            key, sep, value = part.partition("=")
            if not sep or key.strip() not in ("encoding", "template"):
                raise InvalidScheme(f"unknown setting {key.strip()!r} in the default scheme")
            options[key.strip()] = value
        name = digest.removeprefix("hmac-")
        if name not in DIGESTS:
            raise InvalidScheme(f"unknown digest {digest!r} in the default scheme")
        encoding = options.get("encoding", "").lower()
        if encoding not in ("hex", "base64"):
            raise InvalidScheme("the default scheme needs encoding=hex or encoding=base64")
        return cls(digest=digest, encoding=encoding, template=options.get("template") or None)


@dataclass(frozen=True)
class Context:
    """What a verification may need beyond the string: the row's salt and the configuration."""

    salt: str | None = field(default=None, repr=False)
    hash_key: bytes | None = field(default=None, repr=False)  # a secret: never in a repr or a log
    default_scheme: Scheme | None = None
    # Cost of the stand-in work done when a string cannot be verified (see verify()).
    dummy_hash: str | None = field(default=None, repr=False)


DIGESTS = {"md5": hashlib.md5, "sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


# --- helpers --------------------------------------------------------------------

def b64decode(text: str, what: str) -> bytes:
    """Standard base64, with or without padding (the spec allows both)."""
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", text):
        raise MalformedHash(f"{what} is not base64")
    stripped = text.rstrip("=")
    if len(stripped) % 4 == 1:
        raise MalformedHash(f"{what} has an impossible base64 length")
    try:
        return base64.b64decode(stripped + "=" * (-len(stripped) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedHash(f"{what} is not base64") from None


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def parse_params(text: str, allowed: tuple[str, ...], what: str) -> dict[str, int]:
    """``a=1,b=2`` into ints, every key allowed and present once."""
    params: dict[str, int] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or key not in allowed or key in params or not re.fullmatch(r"[0-9]{1,10}", value):
            raise MalformedHash(f"{what}: bad parameter list")
        params[key] = int(value)
    if set(params) != set(allowed):
        raise MalformedHash(f"{what}: expected parameters {', '.join(allowed)}")
    return params


def in_range(value: int, low: int, high: int, what: str) -> int:
    # Bounds stop a hostile or corrupt record from costing minutes or gigabytes.
    if not low <= value <= high:
        raise MalformedHash(f"{what} out of range ({low}..{high})")
    return value


def fill_template(template: bytes, values: dict[bytes, bytes]) -> bytes:
    """One pass, so a salt that contains "{PASSWORD}" is not substituted again."""
    pattern = re.compile(b"|".join(re.escape(k) for k in values))
    return pattern.sub(lambda m: values[m.group(0)], template)


def split_fields(encoded: str, prefix: str, count: int, what: str) -> list[str]:
    fields = encoded[len(prefix):].split("$")
    if len(fields) != count:
        raise MalformedHash(f"{what}: expected {count} fields after the prefix, found {len(fields)}")
    return fields


# --- formats --------------------------------------------------------------------

class Format:
    """One legacy format: ``parse`` (decode) and ``derive``; ``verify`` compares."""

    name: str = ""
    prefixes: tuple[str, ...] = ()

    def parse(self, encoded: str, ctx: Context) -> tuple[dict, bytes]:
        raise NotImplementedError

    def derive(self, params: dict, password: bytes, ctx: Context) -> bytes:
        raise NotImplementedError

    def verify(self, password, encoded: str, ctx: Context | None = None) -> bool:
        """The direct, per-format entry point (the dispatcher calls the same code)."""
        ctx = ctx or Context()
        password = password_bytes(password)
        params, digest = guarded(self.parse, encoded, ctx)
        return hmac.compare_digest(guarded(self.derive, params, password, ctx), digest)


class Argon2(Format):
    name = "argon2"
    prefixes = ("$argon2id$", "$argon2i$")
    _re = re.compile(r"\$(argon2id|argon2i)\$v=(16|19)\$([^$]+)\$([^$]*)\$([^$]*)")

    def parse(self, encoded, ctx):
        match = self._re.fullmatch(encoded)
        if not match:
            raise MalformedHash("argon2: expected $argon2id$v=19$m=M,t=T,p=P$salt$hash")
        variant, version, params_text, salt, digest = match.groups()
        params = parse_params(params_text, ("m", "t", "p"), "argon2")
        in_range(params["p"], 1, 16, "argon2 parallelism")
        in_range(params["m"], 8 * params["p"], 1 << 20, "argon2 memory (KiB)")
        in_range(params["t"], 1, 32, "argon2 time cost")
        salt_bytes, digest_bytes = b64decode(salt, "argon2 salt"), b64decode(digest, "argon2 hash")
        if len(salt_bytes) < 8 or not 4 <= len(digest_bytes) <= 128:
            raise MalformedHash("argon2: salt or hash length out of range")
        return {"variant": variant, "version": int(version), **params, "salt": salt_bytes,
                "hash_len": len(digest_bytes)}, digest_bytes

    def derive(self, params, password, ctx):
        return hash_secret_raw(password, params["salt"], time_cost=params["t"], memory_cost=params["m"],
                               parallelism=params["p"], hash_len=params["hash_len"],
                               type=Type.ID if params["variant"] == "argon2id" else Type.I,
                               version=params["version"])


class Bcrypt(Format):
    name = "bcrypt"
    prefixes = ("$2a$", "$2b$", "$2y$")
    _re = re.compile(r"(\$2[aby]\$)([0-9]{2})\$([./A-Za-z0-9]{22})([./A-Za-z0-9]{31})")

    def parse(self, encoded, ctx):
        match = self._re.fullmatch(encoded)
        if not match:
            raise MalformedHash("bcrypt: expected $2b$NN$ + 22 salt + 31 hash characters")
        prefix, cost, salt, digest = match.groups()
        in_range(int(cost), 4, 18, "bcrypt cost")
        return {"setting": f"{prefix}{cost}${salt}"}, digest.encode()

    def derive(self, params, password, ctx):
        # bcrypt reads at most 72 bytes; the systems that wrote these hashes truncated
        # silently, so do the same (bcrypt>=5 would refuse instead).
        return _bcrypt.hashpw(password[:72], params["setting"].encode())[-31:]


class Pbkdf2(Format):
    name = "pbkdf2"
    prefixes = ("$pbkdf2-sha1$", "$pbkdf2-sha256$", "$pbkdf2-sha512$")

    def parse(self, encoded, ctx):
        digest_name = encoded[len("$pbkdf2-"):encoded.index("$", 1)]
        params_text, salt, digest = split_fields(encoded, f"$pbkdf2-{digest_name}$", 3, "pbkdf2")
        params = parse_params(params_text, ("i", "l"), "pbkdf2")
        in_range(params["i"], 1, 10_000_000, "pbkdf2 iterations")
        digest_bytes = b64decode(digest, "pbkdf2 hash")
        if params["l"] != len(digest_bytes) or not 8 <= len(digest_bytes) <= 256:
            raise MalformedHash("pbkdf2: hash length does not match l=")
        return {"digest": digest_name, "iterations": params["i"], "salt": b64decode(salt, "pbkdf2 salt"),
                "length": len(digest_bytes)}, digest_bytes

    def derive(self, params, password, ctx):
        return hashlib.pbkdf2_hmac(params["digest"], password, params["salt"], params["iterations"],
                                   dklen=params["length"])


def _scrypt_params(params_text: str, what: str) -> dict[str, int]:
    params = parse_params(params_text, ("ln", "r", "p"), what)
    in_range(params["ln"], 1, 20, f"{what} ln")
    in_range(params["r"], 1, 32, f"{what} r")
    in_range(params["p"], 1, 16, f"{what} p")
    if 128 * params["r"] * (1 << params["ln"]) * params["p"] > 1 << 30:
        raise MalformedHash(f"{what}: memory cost above 1 GiB")
    return params


def _scrypt(password: bytes, salt: bytes, ln: int, r: int, p: int, length: int) -> bytes:
    n = 1 << ln
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=length,
                          maxmem=128 * r * (n + p + 2) + (1 << 20))


class Scrypt(Format):
    name = "scrypt"
    prefixes = ("$scrypt$",)

    def parse(self, encoded, ctx):
        params_text, salt, digest = split_fields(encoded, "$scrypt$", 3, "scrypt")
        params = _scrypt_params(params_text, "scrypt")
        digest_bytes = b64decode(digest, "scrypt hash")
        if not 8 <= len(digest_bytes) <= 256:
            raise MalformedHash("scrypt: hash length out of range")
        return {**params, "salt": b64decode(salt, "scrypt salt"), "length": len(digest_bytes)}, digest_bytes

    def derive(self, params, password, ctx):
        return _scrypt(password, params["salt"], params["ln"], params["r"], params["p"], params["length"])


class FirebaseScrypt(Format):
    """Firebase's modified scrypt: scrypt(password, salt + separator), then AES-256-CTR of the signer key."""

    name = "firescrypt"
    prefixes = ("$firescrypt$",)

    def parse(self, encoded, ctx):
        params_text, salt, digest, separator, signer = split_fields(encoded, "$firescrypt$", 5, "firescrypt")
        params = _scrypt_params(params_text, "firescrypt")
        digest_bytes, signer_key = b64decode(digest, "firescrypt hash"), b64decode(signer, "firescrypt signer key")
        if not signer_key or len(digest_bytes) != len(signer_key):
            raise MalformedHash("firescrypt: hash and signer key lengths differ")
        return {**params, "salt": b64decode(salt, "firescrypt salt"),
                "separator": b64decode(separator, "firescrypt salt separator"), "signer_key": signer_key}, digest_bytes

    def derive(self, params, password, ctx):
        key = _scrypt(password, params["salt"] + params["separator"], params["ln"], params["r"], params["p"], 64)
        encryptor = Cipher(algorithms.AES(key[:32]), modes.CTR(b"\0" * 16)).encryptor()
        return encryptor.update(params["signer_key"]) + encryptor.finalize()


class Crypt(Format):
    """crypt(3) MD5-crypt, SHA-256-crypt, SHA-512-crypt, through libpass (maintained passlib)."""

    name = "crypt"
    prefixes = ("$1$", "$5$", "$6$")
    _handlers = {"$1$": md5_crypt, "$5$": sha256_crypt, "$6$": sha512_crypt}

    def parse(self, encoded, ctx):
        prefix = encoded[:3]
        handler = self._handlers[prefix]
        rounds = re.match(r"\$[156]\$rounds=([0-9]{1,10})\$", encoded)
        if rounds:
            in_range(int(rounds.group(1)), 1000, 5_000_000, "crypt rounds")
        try:
            parsed = handler.from_string(encoded)
        except (ValueError, TypeError):
            raise MalformedHash(f"crypt {prefix}: not a valid crypt string") from None
        if not parsed.checksum:
            raise MalformedHash(f"crypt {prefix}: no hash part")
        return {"prefix": prefix, "salt": parsed.salt, "rounds": getattr(parsed, "rounds", None)}, \
            parsed.checksum.encode()

    def derive(self, params, password, ctx):
        handler = self._handlers[params["prefix"]]
        options = {"salt": params["salt"]}
        if params["rounds"] is not None:
            options["rounds"] = params["rounds"]
        # relaxed: salts written by other tools may be longer than libpass's maximum (it truncates as crypt does).
        computed = handler.using(relaxed=True, **options).hash(password)
        return computed.rsplit("$", 1)[1].encode()


class Ldap(Format):
    """RFC 2307 ``{SCHEME}base64(digest[+salt])`` as slappasswd writes them."""

    name = "ldap"
    schemes = {"SHA": ("sha1", False), "SSHA": ("sha1", True), "SHA256": ("sha256", False),
               "SSHA256": ("sha256", True), "SHA512": ("sha512", False), "SSHA512": ("sha512", True),
               "MD5": ("md5", False), "SMD5": ("md5", True)}
    prefixes = tuple("{%s}" % s for s in schemes)

    def parse(self, encoded, ctx):
        scheme, _, payload = encoded[1:].partition("}")
        scheme = scheme.upper()
        if scheme not in self.schemes:
            raise UnknownHashFormat(f"unknown LDAP scheme {{{scheme[:16]}}}")
        digest_name, salted = self.schemes[scheme]
        data = b64decode(payload, f"{{{scheme}}} value")
        size = DIGESTS[digest_name]().digest_size
        if (salted and len(data) <= size) or (not salted and len(data) != size):
            raise MalformedHash(f"{{{scheme}}}: wrong length for {digest_name}")
        return {"digest": digest_name, "salt": data[size:]}, data[:size]

    def derive(self, params, password, ctx):
        return DIGESTS[params["digest"]](password + params["salt"]).digest()


class Digest(Format):
    """``$sha256$<hash>`` or ``$sha256$pf=<template>$<salt>$<hash>`` (Ory Kratos's import form)."""

    name = "digest"
    prefixes = tuple(f"${d}$" for d in DIGESTS)

    def parse(self, encoded, ctx):
        digest_name = encoded[1:encoded.index("$", 1)]
        fields = encoded[len(digest_name) + 2:].split("$")
        if len(fields) == 1:
            template, salt = b"{PASSWORD}", b""
        elif len(fields) == 3 and fields[0].startswith("pf="):
            template = b64decode(fields[0][3:], f"{digest_name} template")
            salt = b64decode(fields[1], f"{digest_name} salt")
            if b"{PASSWORD}" not in template:
                raise MalformedHash(f"{digest_name}: template has no {{PASSWORD}}")
        else:
            raise MalformedHash(f"{digest_name}: expected $<digest>$<hash> or $<digest>$pf=<t>$<salt>$<hash>")
        digest = b64decode(fields[-1], f"{digest_name} hash")
        if len(digest) != DIGESTS[digest_name]().digest_size:
            raise MalformedHash(f"{digest_name}: wrong hash length")
        return {"digest": digest_name, "template": template, "salt": salt}, digest

    def derive(self, params, password, ctx):
        data = fill_template(params["template"], {b"{SALT}": params["salt"], b"{PASSWORD}": password})
        return DIGESTS[params["digest"]](data).digest()


class Hmac(Format):
    """``$hmac-sha256$<hash>$<key>``; an empty key means the configured hash-key."""

    name = "hmac"
    prefixes = tuple(f"$hmac-{d}$" for d in DIGESTS)

    def parse(self, encoded, ctx):
        digest_name = encoded[len("$hmac-"):encoded.index("$", 1)]
        digest, key = split_fields(encoded, f"$hmac-{digest_name}$", 2, f"hmac-{digest_name}")
        digest_bytes = b64decode(digest, f"hmac-{digest_name} hash")
        if len(digest_bytes) != DIGESTS[digest_name]().digest_size:
            raise MalformedHash(f"hmac-{digest_name}: wrong hash length")
        if key == "":
            if not ctx.hash_key:
                raise MissingHashKey("hmac with an empty key needs the configured hash-key")
            return {"digest": digest_name, "key": None}, digest_bytes
        return {"digest": digest_name, "key": b64decode(key, f"hmac-{digest_name} key")}, digest_bytes

    def derive(self, params, password, ctx):
        key = params["key"] if params["key"] is not None else ctx.hash_key
        if not key:
            raise MissingHashKey("hmac with an empty key needs the configured hash-key")
        return hmac.new(key, password, DIGESTS[params["digest"]]).digest()


class Bare(Format):
    """A Kii hash with no prefix, read with the operator's default scheme and the hash-key."""

    name = "bare"
    prefixes = ()

    def parse(self, encoded, ctx):
        scheme = ctx.default_scheme
        if scheme is None:
            raise InvalidScheme("a bare hash needs the configured default scheme")
        hmac_mode = scheme.digest.startswith("hmac-")
        digest_name = scheme.digest.removeprefix("hmac-")
        if scheme.encoding == "hex":
            if not re.fullmatch(r"[0-9A-Fa-f]*", encoded) or len(encoded) % 2:
                raise MalformedHash("bare hash is not hex")
            digest = bytes.fromhex(encoded)
        else:
            digest = b64decode(encoded, "bare hash")
        if len(digest) != DIGESTS[digest_name]().digest_size:
            raise MalformedHash(f"bare hash: wrong length for {scheme.digest}")
        template = scheme.template or ("{PASSWORD}" if hmac_mode else "{SALT}{PASSWORD}")
        needs_key = hmac_mode or "{KEY}" in template
        if needs_key and not ctx.hash_key:
            raise MissingHashKey(f"the default scheme {scheme.digest} needs the hash-key")
        return {"digest": digest_name, "hmac": hmac_mode, "template": template.encode(),
                "salt": (ctx.salt or "").encode()}, digest

    def derive(self, params, password, ctx):
        if not ctx.hash_key and (params["hmac"] or b"{KEY}" in params["template"]):
            raise MissingHashKey("the default scheme needs the hash-key")
        message = fill_template(params["template"], {b"{PASSWORD}": password, b"{SALT}": params["salt"],
                                                     b"{KEY}": ctx.hash_key or b""})
        if params["hmac"]:
            return hmac.new(ctx.hash_key, message, DIGESTS[params["digest"]]).digest()
        return DIGESTS[params["digest"]](message).digest()


FORMATS: dict[str, Format] = {f.name: f for f in (Argon2(), Bcrypt(), Pbkdf2(), Scrypt(), FirebaseScrypt(),
                                                   Crypt(), Ldap(), Digest(), Hmac(), Bare())}
LAYERED_PREFIX = "$layered$"


# --- dispatch -------------------------------------------------------------------

def identify(encoded: str) -> Format:
    """The format a string is in, by its prefix alone."""
    if not isinstance(encoded, str):
        raise MalformedHash("a hash must be text")
    if not encoded:
        raise MalformedHash("empty hash")
    if len(encoded) > MAX_ENCODED_LENGTH:
        raise MalformedHash("hash string too long")
    if encoded[0] not in "${":
        return FORMATS["bare"]
    if encoded[0] == "{":
        return FORMATS["ldap"]
    for fmt in FORMATS.values():
        if encoded.startswith(fmt.prefixes):
            return fmt
    raise UnknownHashFormat("unknown hash prefix")


def password_bytes(password) -> bytes:
    if isinstance(password, str):
        try:
            password = password.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidPassword("password is not valid Unicode text") from None
    if not isinstance(password, (bytes, bytearray)):
        raise InvalidPassword("password must be text or bytes")
    if len(password) > MAX_PASSWORD_BYTES:
        raise InvalidPassword("password too long")
    return bytes(password)


def usable_password(password) -> bool:
    """Whether a typed password can be judged at all: non-empty text that encodes to UTF-8 (no lone
    surrogate) in at most MAX_PASSWORD_BYTES. The one rule every sign-in path asks before a hash or
    Keycloak sees the password; an unusable password is answered as a wrong one."""
    if not isinstance(password, str) or not password:
        return False
    try:
        password_bytes(password)
    except InvalidPassword:
        return False
    return True


def guarded(step, *args):
    """Run a parse/derive step; any library complaint becomes a typed error."""
    try:
        return step(*args)
    except LegacyHashError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, UnicodeError,
            binascii.Error, MemoryError, argon2.exceptions.Argon2Error) as exc:
        raise MalformedHash(f"cannot be decoded ({type(exc).__name__})") from None


def verify(password, encoded: str, ctx: Context | None = None) -> bool:
    """True when `password` matches `encoded`; False when not; LegacyHashError when unverifiable.

    An unverifiable string still costs about as much as a real check (the
    context's ``dummy_hash``), so timing does not tell a caller which
    accounts have a usable hash.
    """
    ctx = ctx or Context()
    try:
        password = password_bytes(password)
        if isinstance(encoded, str) and encoded.startswith(LAYERED_PREFIX):
            return _verify_layered(password, encoded, ctx)
        return identify(encoded).verify(password, encoded, ctx)
    except LegacyHashError:
        burn(ctx)
        raise


def burn(ctx: Context) -> None:
    if ctx.dummy_hash:
        try:
            argon2.PasswordHasher().verify(ctx.dummy_hash, b"\0")
        except argon2.exceptions.Argon2Error:
            pass


# --- layering -------------------------------------------------------------------

def _dump_params(params: dict) -> str:
    def encode(value):
        return {"b": b64encode(value)} if isinstance(value, bytes) else value
    text = json.dumps({k: encode(v) for k, v in params.items()}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _load_params(text: str) -> dict:
    try:
        raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error):
        raise MalformedHash("layered: parameters cannot be decoded") from None
    if not isinstance(raw, dict):
        raise MalformedHash("layered: parameters are not an object")
    return {k: b64decode(v["b"], "layered parameter") if isinstance(v, dict) and "b" in v else v
            for k, v in raw.items()}


def layer(encoded: str, ctx: Context, hasher: argon2.PasswordHasher) -> str:
    """The layered form of a legacy hash (idempotent: a layered string comes back unchanged)."""
    if encoded.startswith(LAYERED_PREFIX):
        return encoded
    fmt = identify(encoded)
    params, digest = guarded(fmt.parse, encoded, ctx)
    return f"{LAYERED_PREFIX}{fmt.name}${_dump_params(params)}{hasher.hash(digest)}"


def _verify_layered(password: bytes, encoded: str, ctx: Context) -> bool:
    rest = encoded[len(LAYERED_PREFIX):]
    name, _, rest = rest.partition("$")
    params_text, sep, phc_tail = rest.partition("$")
    fmt = FORMATS.get(name)
    if fmt is None or not sep or not phc_tail.startswith("argon2id$"):
        raise MalformedHash("layered: expected $layered$<format>$<params>$argon2id$...")
    params = _load_params(params_text)
    derived = guarded(fmt.derive, params, password, ctx)
    try:
        return argon2.PasswordHasher().verify("$" + phc_tail, derived)
    except argon2.exceptions.VerifyMismatchError:
        return False
    except argon2.exceptions.Argon2Error:
        raise MalformedHash("layered: argon2id part cannot be decoded") from None
