"""Every legacy format, with vectors made by independent tools at test time.

Each vector is checked through the dispatcher (``hashes.verify``) and through
its format's own ``verify``: right password yes, wrong no, one flipped
character in the salt or in the hash no, the string cut in half a typed
error. The tools (openssl, htpasswd, slappasswd, argon2, mkpasswd) come from
Debian's packages, which `make test` and `.ci/run` install; a missing tool
fails the test, it is never skipped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import shutil
import subprocess
from dataclasses import dataclass, replace

import pytest

from identity.legacy import hashes
from identity.legacy.hashes import Context, LegacyHashError, MalformedHash, Scheme

HASH_KEY = secrets.token_bytes(24)
UNICODE_PASSWORD = "血糖仪-パスワード-🔑"


def tool(*argv: str, stdin: bytes | None = None) -> str:
    assert shutil.which(argv[0]), f"{argv[0]} is missing: run scripts/install-tools.sh"
    return subprocess.run(argv, input=stdin, capture_output=True, check=True).stdout.decode().strip()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def random_password() -> str:
    return "pw-" + secrets.token_urlsafe(12)


def crypt_salt(n: int) -> str:
    alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    return "".join(secrets.choice(alphabet) for _ in range(n))


@dataclass
class Vector:
    name: str
    format: str
    encoded: str
    password: str
    salt: str | None = None        # the substring of `encoded` holding the salt (or its first char's index)
    digest: str | None = None      # the substring holding the hash
    ctx: Context = Context()
    salt_index: int | None = None  # for formats whose salt shares a base64 blob with the hash
    row_salt: bool = False         # the salt is the row's salt column (bare hashes)


def flip(text: str, index: int) -> str:
    # "A" and "B" are in every alphabet used here (hex too); hex is case-insensitive, so
    # "a" must not become "A".
    new = "B" if text[index] in "Aa" else "A"
    return text[:index] + new + text[index + 1:]


# --- vectors -------------------------------------------------------------------------

def crypt_vectors() -> list[Vector]:
    vectors = []
    for flag, prefix, salt_len in (("-1", "$1$", 8), ("-5", "$5$", 16), ("-6", "$6$", 16)):
        for password in (random_password(), UNICODE_PASSWORD):
            salt = crypt_salt(salt_len)
            encoded = tool("openssl", "passwd", flag, "-salt", salt, password)
            vectors.append(Vector(f"openssl passwd {flag}", "crypt", encoded, password, salt=salt,
                                  digest=encoded.rsplit("$", 1)[1]))
    for method, prefix in (("sha-256", "$5$"), ("sha-512", "$6$")):
        password, salt = random_password(), crypt_salt(16)
        encoded = tool("mkpasswd", "-m", method, "-R", "12000", "-S", salt, password)
        assert encoded.startswith(f"{prefix}rounds=12000$")
        vectors.append(Vector(f"mkpasswd {method} rounds", "crypt", encoded, password, salt=salt,
                              digest=encoded.rsplit("$", 1)[1]))
    return vectors


def bcrypt_vectors() -> list[Vector]:
    vectors = []
    for password in (random_password(), UNICODE_PASSWORD):
        line = tool("htpasswd", "-nbB", "-C", "5", "user", password)
        encoded = line.split(":", 1)[1]
        assert encoded.startswith("$2y$05$")
        for prefix in ("$2y$", "$2b$", "$2a$"):  # one algorithm, three historical prefixes
            e = prefix + encoded[4:]
            vectors.append(Vector(f"htpasswd -B as {prefix}", "bcrypt", e, password,
                                  salt=e[7:29], digest=e[29:]))
    return vectors


def ldap_vectors() -> list[Vector]:
    vectors = []
    sizes = {"SHA": 20, "SSHA": 20, "MD5": 16, "SMD5": 16, "SHA256": 32, "SSHA256": 32, "SHA512": 64,
             "SSHA512": 64}
    for scheme, size in sizes.items():
        password = random_password()
        argv = ["slappasswd", "-h", "{%s}" % scheme, "-s", password]
        if "256" in scheme or "512" in scheme:
            argv[1:1] = ["-o", "module-load=pw-sha2"]
        encoded = tool(*argv)
        assert encoded.startswith("{%s}" % scheme)
        payload_start = len(scheme) + 2
        salted = scheme.startswith("S") and scheme not in ("SHA", "SHA256", "SHA512")
        salt_index = payload_start + (size * 8) // 6 + 1 if salted else None
        vectors.append(Vector(f"slappasswd {{{scheme}}}", "ldap", encoded, password,
                              digest=encoded[payload_start:], salt_index=salt_index))
    lower = vectors[1]
    vectors.append(replace(lower, name="slappasswd {ssha} lower-case", encoded="{ssha}" + lower.encoded[6:],
                           salt_index=lower.salt_index))
    return vectors


def argon2_vectors() -> list[Vector]:
    vectors = []
    for variant in ("-id", "-i"):
        password, salt = random_password(), secrets.token_hex(8)
        encoded = tool("argon2", salt, variant, "-t", "2", "-m", "10", "-p", "1", "-e", stdin=password.encode())
        fields = encoded.split("$")
        vectors.append(Vector(f"argon2 {variant}", "argon2", encoded, password, salt=fields[4], digest=fields[5]))
    return vectors


def kdf_vectors() -> list[Vector]:
    """PBKDF2 and scrypt from `openssl kdf`, an implementation independent of hashlib."""
    vectors = []
    for digest, length in (("sha1", 20), ("sha256", 32), ("sha512", 64)):
        password, salt = random_password(), secrets.token_bytes(16)
        out = tool("openssl", "kdf", "-keylen", str(length), "-kdfopt", f"digest:{digest.upper()}",
                   "-kdfopt", f"pass:{password}", "-kdfopt", f"hexsalt:{salt.hex()}",
                   "-kdfopt", "iter:1500", "PBKDF2")
        raw = bytes.fromhex(out.replace(":", ""))
        encoded = f"$pbkdf2-{digest}$i=1500,l={length}${b64(salt)}${b64(raw)}"
        vectors.append(Vector(f"openssl kdf PBKDF2 {digest}", "pbkdf2", encoded, password,
                              salt=b64(salt), digest=b64(raw)))
    password, salt = random_password(), secrets.token_bytes(16)
    out = tool("openssl", "kdf", "-keylen", "32", "-kdfopt", f"pass:{password}", "-kdfopt", f"hexsalt:{salt.hex()}",
               "-kdfopt", "n:1024", "-kdfopt", "r:8", "-kdfopt", "p:1", "SCRYPT")
    raw = bytes.fromhex(out.replace(":", ""))
    encoded = f"$scrypt$ln=10,r=8,p=1${base64.b64encode(salt).decode()}${base64.b64encode(raw).decode()}"
    vectors.append(Vector("openssl kdf SCRYPT (padded base64)", "scrypt", encoded, password,
                          salt=base64.b64encode(salt).decode(), digest=base64.b64encode(raw).decode()))
    return vectors


def firebase_vectors() -> list[Vector]:
    # Firebase's published example (firebase/scrypt README): project parameters and one user.
    salt, digest = "42xEC+ixf3L2lw==", ("lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo7"
                                        "8198JAdRuid5lQ==")
    signer = "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA=="
    encoded = f"$firescrypt$ln=14,r=8,p=1${salt}${digest}$Bw==${signer}"
    return [Vector("Firebase published vector", "firescrypt", encoded, "user1password", salt=salt, digest=digest)]


def digest_vectors() -> list[Vector]:
    """Kratos's `$<digest>$...` forms, made with hashlib as the issue prescribes."""
    vectors = []
    for name in ("md5", "sha1", "sha256", "sha512"):
        password = random_password()
        raw = hashlib.new(name, password.encode()).digest()
        vectors.append(Vector(f"hashlib {name} unsalted", "digest", f"${name}${b64(raw)}", password, digest=b64(raw)))
        salt = secrets.token_bytes(12)
        template = b"{SALT}:{PASSWORD}:{SALT}"
        raw = hashlib.new(name, salt + b":" + password.encode() + b":" + salt).digest()
        encoded = f"${name}$pf={b64(template)}${b64(salt)}${b64(raw)}"
        vectors.append(Vector(f"hashlib {name} pf template", "digest", encoded, password, salt=b64(salt),
                              digest=b64(raw)))
    return vectors


def hmac_vectors() -> list[Vector]:
    vectors = []
    for name in ("md5", "sha1", "sha256", "sha512"):
        password, key = random_password(), secrets.token_bytes(16)
        raw = hmac.new(key, password.encode(), name).digest()
        vectors.append(Vector(f"hmac {name} inline key", "hmac", f"$hmac-{name}${b64(raw)}${b64(key)}", password,
                              digest=b64(raw)))
        raw = hmac.new(HASH_KEY, password.encode(), name).digest()
        vectors.append(Vector(f"hmac {name} configured key", "hmac", f"$hmac-{name}${b64(raw)}$", password,
                              digest=b64(raw), ctx=Context(hash_key=HASH_KEY)))
    return vectors


def bare_vectors() -> list[Vector]:
    vectors = []
    password = random_password()
    raw = hmac.new(HASH_KEY, password.encode(), "sha256").hexdigest()
    vectors.append(Vector("bare hmac-sha256 hex", "bare", raw, password, digest=raw,
                          ctx=Context(hash_key=HASH_KEY, default_scheme=Scheme.parse("hmac-sha256;encoding=hex"))))
    password = random_password()
    raw = base64.b64encode(hashlib.sha256(password.encode() + HASH_KEY).digest()).decode()
    vectors.append(Vector("bare sha256 base64 {PASSWORD}{KEY}", "bare", raw, password, digest=raw, ctx=Context(
        hash_key=HASH_KEY, default_scheme=Scheme.parse("sha256;encoding=base64;template={PASSWORD}{KEY}"))))
    password, salt = random_password(), secrets.token_hex(6)
    raw = hashlib.md5((salt + password).encode()).hexdigest().upper()
    vectors.append(Vector("bare md5 upper-case hex, row salt", "bare", raw, password, digest=raw, row_salt=True,
                          ctx=Context(salt=salt, default_scheme=Scheme.parse("md5;encoding=hex"))))
    password, salt = random_password(), secrets.token_hex(6)
    raw = hmac.new(HASH_KEY, f"{salt}|{password}".encode(), "sha512").hexdigest()
    vectors.append(Vector("bare hmac-sha512 template with salt", "bare", raw, password, digest=raw, row_salt=True,
                          ctx=Context(salt=salt, hash_key=HASH_KEY,
                                      default_scheme=Scheme.parse("hmac-sha512;encoding=hex;template={SALT}|{PASSWORD}"))))
    return vectors


VECTORS = [v for make in (crypt_vectors, bcrypt_vectors, ldap_vectors, argon2_vectors, kdf_vectors, firebase_vectors,
                          digest_vectors, hmac_vectors, bare_vectors) for v in make()]
IDS = [v.name for v in VECTORS]


def check(vector: Vector, encoded: str, password: str, ctx: Context | None = None) -> tuple[bool, bool]:
    """The answer of the dispatcher and of the format's direct function, which must agree."""
    ctx = ctx or vector.ctx
    dispatched = hashes.verify(password, encoded, ctx)
    direct = hashes.FORMATS[vector.format].verify(password, encoded, ctx)
    return dispatched, direct


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_right_password(vector):
    assert hashes.identify(vector.encoded).name == vector.format
    assert check(vector, vector.encoded, vector.password) == (True, True)


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_wrong_password(vector):
    assert check(vector, vector.encoded, vector.password + "x") == (False, False)
    assert check(vector, vector.encoded, vector.password[:-1]) == (False, False)
    assert check(vector, vector.encoded, "") == (False, False)


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_flipped_hash_character(vector):
    index = vector.encoded.rindex(vector.digest)
    assert check(vector, flip(vector.encoded, index), vector.password) == (False, False)


SALTED = [v for v in VECTORS if v.salt or v.salt_index or v.row_salt]


@pytest.mark.parametrize("vector", SALTED, ids=[v.name for v in SALTED])
def test_flipped_salt_character(vector):
    if vector.row_salt:
        ctx = replace(vector.ctx, salt=flip(vector.ctx.salt, 0))
        assert check(vector, vector.encoded, vector.password, ctx) == (False, False)
        return
    index = vector.salt_index if vector.salt_index is not None else vector.encoded.index(vector.salt, 3)
    assert check(vector, flip(vector.encoded, index), vector.password) == (False, False)


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_truncated_is_a_typed_error(vector):
    truncated = vector.encoded[: len(vector.encoded) // 2]
    for verify in (hashes.verify, hashes.FORMATS[vector.format].verify):
        with pytest.raises(MalformedHash) as info:
            verify(vector.password, truncated, vector.ctx)
        assert info.value.reason
        assert truncated not in info.value.reason


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_layered_record_verifies(vector):
    import argon2

    hasher = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    layered = hashes.layer(vector.encoded, vector.ctx, hasher)
    assert layered.startswith("$layered$" + vector.format + "$")
    assert vector.digest not in layered  # the weak digest is gone from what is stored
    assert hashes.layer(layered, vector.ctx, hasher) == layered  # layering twice is a no-op
    assert hashes.verify(vector.password, layered, vector.ctx) is True
    assert hashes.verify(vector.password + "x", layered, vector.ctx) is False


@pytest.mark.parametrize("encoded, error", [
    ("", hashes.MalformedHash),
    ("$unknown$abc", hashes.UnknownHashFormat),
    ("$argon2d$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA", hashes.UnknownHashFormat),
    ("{CRYPT}$1$abc$def", hashes.UnknownHashFormat),
    ("$scrypt$ln=30,r=8,p=1$c2FsdA$aGFzaGhhc2g", hashes.MalformedHash),       # 128 GiB: refused
    ("$pbkdf2-sha256$i=999999999,l=8$c2FsdA$aGFzaGhhc2g", hashes.MalformedHash),
    ("$2b$31$" + "a" * 53, hashes.MalformedHash),                             # cost 31: refused
    ("$pbkdf2-md4$i=1,l=8$c2FsdA$aGFzaGhhc2g", hashes.UnknownHashFormat),
    ("$sha256$not base64!", hashes.MalformedHash),
    ("$hmac-sha256$" + b64(b"x" * 32) + "$", hashes.MissingHashKey),          # no configured key
    ("0123abcd", hashes.InvalidScheme),                                         # bare, no scheme configured
    ("$layered$digest$%%%$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", hashes.MalformedHash),
    ("x" * 5000, hashes.MalformedHash),
])
def test_malformed_and_unknown_strings(encoded, error):
    with pytest.raises(error) as info:
        hashes.verify("password", encoded, Context())
    assert isinstance(info.value, LegacyHashError) and info.value.reason


def test_bare_hash_without_key_is_a_typed_error():
    ctx = Context(default_scheme=Scheme.parse("hmac-sha256;encoding=hex"))
    with pytest.raises(hashes.MissingHashKey):
        hashes.verify("pw", "ab" * 32, ctx)


@pytest.mark.parametrize("text", ["", "rot13;encoding=hex", "sha256", "sha256;encoding=base32",
                                  "sha256;encoding=hex;salt=1"])
def test_bad_default_scheme(text):
    with pytest.raises(hashes.InvalidScheme):
        Scheme.parse(text)


def test_password_types():
    vector = VECTORS[0]
    assert hashes.verify(vector.password.encode(), vector.encoded) is True
    with pytest.raises(hashes.InvalidPassword):
        hashes.verify("\ud800", vector.encoded)      # lone surrogate: not encodable
    with pytest.raises(hashes.InvalidPassword):
        hashes.verify(None, vector.encoded)
    with pytest.raises(hashes.InvalidPassword):
        hashes.verify("x" * 5000, vector.encoded)


def test_bcrypt_long_password_is_truncated_like_the_legacy_system():
    password = "p" * 72
    encoded = tool("htpasswd", "-nbB", "-C", "4", "u", password).split(":", 1)[1]
    assert hashes.verify(password + "ignored-by-bcrypt", encoded) is True
