"""What each SRP step refuses. A message never holds a secret, so callers may log it."""

from __future__ import annotations


class SrpError(Exception):
    """A step of the SRP exchange refused its input."""


class InvalidPublicValue(SrpError):
    """SRP_A is not a number in (0, N), or B or u came out zero."""


class ClaimMismatch(SrpError):
    """PASSWORD_CLAIM_SIGNATURE does not match: a wrong password, or an altered claim."""


class MalformedTimestamp(SrpError):
    """TIMESTAMP is not written as the clients write it."""


class TimestampOutOfRange(SrpError):
    """TIMESTAMP is too far from the server's clock."""


class InvalidSecretBlock(SrpError):
    """SECRET_BLOCK was not sealed by this service (altered, truncated, another key)."""


class SecretBlockMismatch(SrpError):
    """SECRET_BLOCK was issued to another user or another app client."""


class ExpiredSecretBlock(SrpError):
    """SECRET_BLOCK's time to answer has passed."""
