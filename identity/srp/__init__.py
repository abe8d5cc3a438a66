"""The server side of Cognito's SRP sign-in (USER_SRP_AUTH, then the PASSWORD_VERIFIER challenge).

SRP-6a over the RFC 5054 3072-bit group, computed exactly as Cognito's clients compute it
(amazon-cognito-identity-js, Amplify v6, pycognito). Pure: no Flask, no database, no clock of its
own (callers pass an aware UTC `now`). Errors carry fixed messages: never a password, verifier,
b, S, key or secret block. docs/srp.md describes the protocol and the secret-block design.
"""

from identity.srp.blocks import OpenedBlock, SealedBlock, SecretBlocks
from identity.srp.errors import (
    ClaimMismatch,
    ExpiredSecretBlock,
    InvalidPublicValue,
    InvalidSecretBlock,
    MalformedTimestamp,
    SecretBlockMismatch,
    SrpError,
    TimestampOutOfRange,
)
from identity.srp.protocol import (
    G,
    K,
    N,
    ServerSession,
    claim_signature,
    derive_key,
    make_verifier,
    pad_hex,
    parse_public_value,
    pool_name,
    verifier_for,
    verify_claim,
)
from identity.srp.timestamps import check_timestamp, format_timestamp, parse_timestamp

__all__ = [
    "ClaimMismatch", "ExpiredSecretBlock", "G", "InvalidPublicValue", "InvalidSecretBlock", "K",
    "MalformedTimestamp", "N", "OpenedBlock", "SealedBlock", "SecretBlockMismatch", "SecretBlocks",
    "ServerSession", "SrpError", "TimestampOutOfRange", "check_timestamp", "claim_signature",
    "derive_key", "format_timestamp", "make_verifier", "pad_hex", "parse_public_value",
    "parse_timestamp", "pool_name", "verifier_for", "verify_claim",
]
