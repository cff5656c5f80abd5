"""The request signature: HMAC-SHA256 over timestamp, method, path with query, and body hash.

    Chainfin-Signature: v1=<hex HMAC-SHA256(secret, "<ts>.<METHOD>.<path?query>.<sha256(body)>")>

Outbound webhooks are signed the same way, so one reference client serves both directions.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_VERSION = "v1"


def signing_payload(timestamp: str, method: str, path_with_query: str, body: bytes) -> bytes:
    body_hash = hashlib.sha256(body).hexdigest()
    return f"{timestamp}.{method.upper()}.{path_with_query}.{body_hash}".encode()


def sign(secret: str, timestamp: str, method: str, path_with_query: str, body: bytes) -> str:
    """Return the Chainfin-Signature header value for a request."""
    payload = signing_payload(timestamp, method, path_with_query, body)
    digest = hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def signature_verify(
    secret: str, header: str, timestamp: str, method: str, path_with_query: str, body: bytes
) -> str | None:
    """Constant-time check of a Chainfin-Signature header (may list several, comma-separated).

    Returns the canonical signature that matched, or None. Replay protection must remember
    that value, not the header: the header can be respelled (extra entries, spaces) at will.
    """
    expected = sign(secret, timestamp, method, path_with_query, body)
    offered = [part.strip() for part in header.split(",")]
    # Compare against every offered value so timing does not reveal which one matched.
    matches = [hmac.compare_digest(expected.encode(), value.encode()) for value in offered]
    return expected if any(matches) else None
