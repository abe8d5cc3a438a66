"""SRP-6a as Cognito's clients compute it: the group, the verifier, B, the key, the claim signature.

The clients hash hex strings, each number padded to even length with a leading 00 when its high
bit is set (Java's BigInteger.toByteArray); every hash here goes through that same padding.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets

from identity.srp.errors import ClaimMismatch, InvalidPublicValue, SrpError

N = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C"
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
    16)
G = 2
N_BYTES = (N.bit_length() + 7) // 8
INFO_BITS = b"Caldera Derived Key"
SALT_BYTES = 16
B_SECRET_BYTES = 32  # RFC 5054 asks for at least 256 random bits
_HEX = re.compile(r"[0-9a-fA-F]{1,%d}" % (2 * N_BYTES))


def pad_hex(value: int) -> str:
    """The clients' padHex: even-length lowercase hex, with 00 in front when the high bit is set."""
    text = format(value, "x")
    if len(text) % 2:
        return "0" + text
    return "00" + text if text[0] in "89abcdef" else text


def hex_hash(hex_text: str) -> str:
    return hashlib.sha256(bytes.fromhex(hex_text)).hexdigest()


K = int(hex_hash(pad_hex(N) + pad_hex(G)), 16)


def pool_name(user_pool_id: str) -> str:
    """What SRP signs over: the part of the pool id after the underscore, as the clients split it."""
    parts = user_pool_id.split("_")
    if len(parts) < 2 or not parts[1]:
        raise ValueError("a user pool id reads <region>_<name>")
    return parts[1]


def password_x(pool: str, user_id_for_srp: str, password: str, salt_hex: str) -> int:
    inner = hashlib.sha256(f"{pool}{user_id_for_srp}:{password}".encode("utf-8")).hexdigest()
    return int(hex_hash(pad_hex(int(salt_hex, 16)) + inner), 16)


def verifier_for(pool: str, user_id_for_srp: str, password: str, salt_hex: str) -> str:
    """v = g^x mod N, as padded hex."""
    return pad_hex(pow(G, password_x(pool, user_id_for_srp, password, salt_hex), N))


def make_verifier(pool: str, user_id_for_srp: str, password: str) -> tuple[str, str]:
    """(salt_hex, verifier_hex) to store for a user, a fresh random salt each time.

    Send SALT exactly as stored: its padded form reads the same to a client that pads the string
    (pycognito) and to one that parses it to a number first (the JavaScript clients)."""
    salt_hex = pad_hex(int.from_bytes(secrets.token_bytes(SALT_BYTES), "big"))
    return salt_hex, verifier_for(pool, user_id_for_srp, password, salt_hex)


def parse_public_value(srp_a_hex: str) -> int:
    """SRP_A from InitiateAuth. Honest clients send g^a mod N, so anything outside (0, N) is refused."""
    if not isinstance(srp_a_hex, str) or not _HEX.fullmatch(srp_a_hex):
        raise InvalidPublicValue("SRP_A is not a hex number of the group's size")
    value = int(srp_a_hex, 16)
    if value % N == 0 or value >= N:
        raise InvalidPublicValue("SRP_A is not a valid public value")
    return value


def derive_key(premaster: int, u: int) -> bytes:
    """Cognito's HKDF: salt pad(u), input pad(S), one block over "Caldera Derived Key", 16 bytes."""
    prk = hmac.new(bytes.fromhex(pad_hex(u)), bytes.fromhex(pad_hex(premaster)), hashlib.sha256).digest()
    return hmac.new(prk, INFO_BITS + b"\x01", hashlib.sha256).digest()[:16]


class ServerSession:
    """The server's half of one exchange: b, B = k*v + g^b mod N, and the key once A is known.

    Rebuilt from (verifier, b) when the challenge comes back, so a password changed in between
    (a new verifier) makes the old claim fail."""

    def __init__(self, verifier_hex: str, b: int):
        self._v = int(verifier_hex, 16)
        self._b = b
        self.srp_b = (K * self._v + pow(G, b, N)) % N
        if self.srp_b == 0:
            raise InvalidPublicValue("B came out zero")

    @classmethod
    def start(cls, verifier_hex: str) -> ServerSession:
        return cls(verifier_hex, int.from_bytes(secrets.token_bytes(B_SECRET_BYTES), "big"))

    def __repr__(self) -> str:
        return "ServerSession(<secret>)"

    @property
    def b(self) -> int:
        return self._b

    @property
    def srp_b_hex(self) -> str:
        return format(self.srp_b, "x")

    def key(self, srp_a: int) -> bytes:
        """The 16-byte key a client derives from the right password: S = (A * v^u)^b mod N."""
        if srp_a % N == 0:
            raise InvalidPublicValue("SRP_A is not a valid public value")
        u = int(hex_hash(pad_hex(srp_a) + pad_hex(self.srp_b)), 16)
        if u == 0:
            raise InvalidPublicValue("u came out zero")
        premaster = pow(srp_a * pow(self._v, u, N) % N, self._b, N)
        return derive_key(premaster, u)


def b64decode_strict(text: str, error: type[SrpError]) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise error("not base64") from None


def claim_signature(pool: str, user_id_for_srp: str, secret_block: bytes, timestamp: str, key: bytes) -> bytes:
    """HMAC-SHA256(key, poolName | userIdForSrp | secret block bytes | TIMESTAMP)."""
    message = pool.encode("utf-8") + user_id_for_srp.encode("utf-8") + secret_block + timestamp.encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).digest()


def verify_claim(pool: str, user_id_for_srp: str, secret_block_b64: str, timestamp: str,
                 signature_b64: str, key: bytes) -> None:
    """Raise ClaimMismatch unless PASSWORD_CLAIM_SIGNATURE proves the client holds the same key."""
    block = b64decode_strict(secret_block_b64, ClaimMismatch)
    given = b64decode_strict(signature_b64, ClaimMismatch)
    expected = claim_signature(pool, user_id_for_srp, block, timestamp, key)
    if not hmac.compare_digest(given, expected):
        raise ClaimMismatch("the password claim does not match")
