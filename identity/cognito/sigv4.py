"""AWS Signature Version 4 of an admin request, verified with botocore's own signer. No Flask here.

The canonical request is never written here: botocore's SigV4Auth builds it, its string to sign and
the signature from the request as received (only the headers the client signed, the X-Amz-Date it
signed at), and the two signatures are compared in constant time. What botocore would take on trust
is checked first: the credential scope (service `cognito-idp`, the pool's region, the date), the
clock within five minutes, and a body hash the client declared.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Mapping

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from identity.cognito import errors

SERVICE = "cognito-idp"
ALGORITHM = "AWS4-HMAC-SHA256"
SKEW = timedelta(minutes=5)
MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method. Consult the service documentation for details.")


@dataclass(frozen=True)
class Received:
    """A request as it reached the service."""
    method: str
    scheme: str
    hosts: tuple[str, ...]   # the Host the client may have signed (as received; the public base URL's)
    path: str
    query: str
    headers: Mapping[str, str] = field(repr=False)   # case-insensitive
    body: bytes = field(repr=False)


@dataclass(frozen=True)
class Authorization:
    access_key_id: str
    date: str
    region: str
    service: str
    signed: tuple[str, ...]
    signature: str = field(repr=False)


def parse(value: str) -> Authorization:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise errors.IncompleteSignatureError(f"Unsupported AWS 'algorithm': '{algorithm[:40]}'")
    parts = {}
    for item in rest.split(","):
        name, sep, text = item.strip().partition("=")
        if sep:
            parts[name] = text
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if name not in parts]
    if missing:
        raise errors.IncompleteSignatureError(" ".join(f"Authorization header requires '{name}' parameter."
                                                        for name in missing))
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not scope[0]:
        raise errors.IncompleteSignatureError("Credential is malformed.")
    return Authorization(scope[0], scope[1], scope[2], scope[3], tuple(parts["SignedHeaders"].split(";")),
                         parts["Signature"])


def _check_scope(auth: Authorization, amz_date: str, region: str, now: datetime) -> None:
    try:
        when = datetime.strptime(amz_date, SIGV4_TIMESTAMP)
    except ValueError:
        raise errors.IncompleteSignatureError("Date must be in ISO-8601 'basic format'.") from None
    signed = list(auth.signed)
    if signed != sorted(set(signed)) or "host" not in signed or "x-amz-date" not in signed:
        raise errors.InvalidSignatureError("'Host' and 'X-Amz-Date' must be signed headers.")
    if auth.date != amz_date[:8]:
        raise errors.InvalidSignatureError("Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                                           "version of date from HTTP.")
    if auth.service != SERVICE:
        raise errors.InvalidSignatureError(f"Credential should be scoped to correct service: '{SERVICE}'. ")
    if auth.region != region:
        raise errors.InvalidSignatureError(f"Credential should be scoped to a valid region, not "
                                           f"'{auth.region[:40]}'. ")
    stamp = now.strftime(SIGV4_TIMESTAMP)
    if when < now - SKEW:
        raise errors.InvalidSignatureError(f"Signature expired: {amz_date} is now earlier than "
                                           f"{(now - SKEW).strftime(SIGV4_TIMESTAMP)} ({stamp} - 5 min.)")
    if when > now + SKEW:
        raise errors.InvalidSignatureError(f"Signature not yet current: {amz_date} is still later than "
                                           f"{(now + SKEW).strftime(SIGV4_TIMESTAMP)} ({stamp} + 5 min.)")


def _signature(received: Received, auth: Authorization, host: str, amz_date: str, secret: str,
               region: str) -> str | None:
    """botocore's signature of the request as the client would have signed it with `host`; None when
    botocore cannot rebuild the headers the client signed (it drops some names, adds `host`)."""
    headers = {}
    for name in auth.signed:
        value = host if name == "host" else received.headers.get(name)
        if value is None:
            return None
        headers[name] = value
    url = f"{received.scheme}://{host}{received.path}" + (f"?{received.query}" if received.query else "")
    request = AWSRequest(method=received.method, url=url, headers=headers, data=received.body)
    request.context["timestamp"] = amz_date            # what add_auth() would take from the clock
    request.context["payload_signing_enabled"] = True  # the body is always hashed, https or not
    signer = SigV4Auth(Credentials(auth.access_key_id, secret), SERVICE, region)
    if signer.signed_headers(signer.headers_to_sign(request)) != ";".join(auth.signed):
        return None
    return signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)


def verify(received: Received, secret_for: Callable[[str], str | None], region: str,
           now: datetime | None = None) -> str:
    """The access key id whose secret signed `received`; a CognitoError otherwise, Cognito's own."""
    value = received.headers.get("Authorization")
    if not value:
        raise errors.MissingAuthenticationTokenError()
    auth = parse(value)
    amz_date = received.headers.get("X-Amz-Date")
    if not amz_date:
        raise errors.IncompleteSignatureError("Authorization header requires existence of either a 'X-Amz-Date' "
                                              "or a 'Date' header.")
    _check_scope(auth, amz_date, region, now or datetime.now(timezone.utc).replace(tzinfo=None))
    declared = received.headers.get("X-Amz-Content-Sha256")
    if declared is not None and not hmac.compare_digest(declared.encode(), hashlib.sha256(received.body).hexdigest()
                                                        .encode()):
        raise errors.InvalidSignatureError("The provided 'x-amz-content-sha256' header does not match what was "
                                           "computed.")
    secret = secret_for(auth.access_key_id)
    if secret is None:
        raise errors.UnrecognizedClientError()
    given = auth.signature.encode("ascii", "replace")
    for host in received.hosts:
        expected = _signature(received, auth, host, amz_date, secret, region)
        if expected is not None and hmac.compare_digest(expected.encode(), given):
            return auth.access_key_id
    raise errors.InvalidSignatureError(MISMATCH)
