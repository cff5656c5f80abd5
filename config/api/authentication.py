"""Who is asking: a marketplace or one merchant, by bearer key; for writes, proof it is theirs.

Marketplace keys and merchant keys (merchants.models.ApiKey) authenticate the same way; which
kind an endpoint takes is its permission class's business (config/api/permissions.py). Every
request carries ``Authorization: Bearer <api_key>``. Every POST also carries
``Chainfin-Timestamp`` (unix seconds, within 300 s of our clock), ``Chainfin-Signature``
(config/api/signing.py) and ``Idempotency-Key``. A signature is accepted once: a replay within
the timestamp window is refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from config.api.problems import ApiProblem
from config.api.signing import signature_verify
from merchants import credentials
from merchants.models import ApiKey, Marketplace, Merchant

TIMESTAMP_TOLERANCE_SECONDS = 300


@dataclass(frozen=True)
class ApiPrincipal:
    """The authenticated caller, as ``request.user``: one party acting through one key.

    Exactly one of ``marketplace`` and ``merchant`` is set, as on the key itself.
    """

    api_key_id: int
    marketplace: Marketplace | None = None
    merchant: Merchant | None = None

    is_authenticated = True
    is_anonymous = False

    def __post_init__(self) -> None:
        if (self.marketplace is None) == (self.merchant is None):
            raise ValueError("A principal is a marketplace or a merchant, exactly one.")

    @property
    def kind(self) -> str:
        """Either 'marketplace' or 'merchant'."""
        return "marketplace" if self.marketplace is not None else "merchant"

    @property
    def marketplace_id(self) -> int | None:
        return self.marketplace.pk if self.marketplace is not None else None

    @property
    def merchant_id(self) -> int | None:
        return self.merchant.pk if self.merchant is not None else None

    @property
    def scope(self) -> str:
        """What idempotency keys and rate limits are counted per: "marketplace:<id>" or
        "merchant:<id>", so the two kinds never share a key or a counter."""
        if self.marketplace is not None:
            return f"marketplace:{self.marketplace.pk}"
        return f"merchant:{self.merchant_id}"


def _unauthorized(code: str, detail: str) -> ApiProblem:
    return ApiProblem(
        401,
        code,
        "The request is not authenticated.",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="chainfin"'},
    )


@lru_cache(maxsize=1024)
def _signing_secret(api_key_id: int, sealed: bytes) -> str:
    return credentials.secret_open(sealed)


class SignedApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiPrincipal, ApiKey]:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise _unauthorized("missing_api_key", "Send 'Authorization: Bearer <api_key>'.")
        if not key.isascii() or not key.strip().isprintable():
            raise _unauthorized("invalid_api_key", "The API key is unknown or revoked.")
        api_key = (
            ApiKey.objects.select_related("marketplace", "merchant")
            .filter(prefix=credentials.key_prefix(key.strip()), revoked_at__isnull=True)
            .first()
        )
        if api_key is None or not credentials.key_matches(key.strip(), api_key.key_hash):
            raise _unauthorized("invalid_api_key", "The API key is unknown or revoked.")
        # Closing a merchant ends its keys without anyone having to revoke them one by one.
        if api_key.merchant is not None and api_key.merchant.status == Merchant.Status.CLOSED:
            raise _unauthorized("invalid_api_key", "The API key is unknown or revoked.")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            self._check_signature(request, api_key)
        principal = ApiPrincipal(
            api_key_id=api_key.pk, marketplace=api_key.marketplace, merchant=api_key.merchant
        )
        return principal, api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="chainfin"'

    def _check_signature(self, request: Request, api_key: ApiKey) -> None:
        timestamp = request.headers.get("Chainfin-Timestamp", "")
        signature = request.headers.get("Chainfin-Signature", "")
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            raise _unauthorized("missing_timestamp", "Send 'Chainfin-Timestamp: <unix seconds>'.")
        if abs(time.time() - int(timestamp)) > TIMESTAMP_TOLERANCE_SECONDS:
            raise _unauthorized(
                "stale_timestamp",
                f"Chainfin-Timestamp is more than {TIMESTAMP_TOLERANCE_SECONDS} s from our clock.",
            )
        if not signature or len(signature) > 1024:
            raise _unauthorized("missing_signature", "Send 'Chainfin-Signature: v1=<hex>'.")
        body = _body(request)
        secret = _signing_secret(api_key.pk, bytes(api_key.signing_secret_sealed))
        path = request.get_full_path()
        matched = signature_verify(secret, signature, timestamp, request.method or "", path, body)
        if matched is None:
            raise _unauthorized("invalid_signature", "The signature does not match the request.")
        # Accepted once: the cache keeps it past the timestamp window, after which the
        # timestamp check refuses it anyway.
        if not cache.add(f"sig:{api_key.pk}:{matched}", 1, 2 * TIMESTAMP_TOLERANCE_SECONDS):
            raise _unauthorized("replayed_signature", "This signature was already used.")


def _body(request: Request) -> bytes:
    """The raw body, refusing oversized requests before reading them."""
    limit = settings.API_MAX_BODY_BYTES
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > limit:
        raise ApiProblem(
            413,
            "request_too_large",
            "The request body is too large.",
            f"The limit is {limit:,} bytes.",
        )
    return request._request.body
