"""Who is asking: a marketplace or one merchant, by bearer key; for writes, proof it is theirs.

Marketplace keys and merchant keys (merchants.models.ApiKey) authenticate the same way; which
kind an endpoint takes is its permission class's business (config/api/permissions.py). Every
request carries ``Authorization: Bearer <api_key>``. Every POST also carries
``Chainfin-Timestamp`` (unix seconds, within 300 s of our clock), ``Chainfin-Signature``
(config/api/signing.py) and ``Idempotency-Key``. A signature is accepted once: within the
timestamp window, a request carrying a spent signature is refused, unless it is the exact
repeat (same Idempotency-Key, method, path and body) of a request whose response is stored; that
one gets the stored response and runs nothing (config/api/idempotency.py). So every POST view
must answer through ``idempotent``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection
from django.db.models import Model
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from config.api.idempotency import replay_only_mark
from config.api.problems import ApiProblem
from config.api.signing import signature_verify
from config.api.throttling import cache_add
from merchants import credentials
from merchants.models import ApiKey, Marketplace, Merchant

TIMESTAMP_TOLERANCE_SECONDS = 300


@dataclass(frozen=True)
class ApiPrincipal:
    """The authenticated caller, as ``request.user``: one party acting through one key.

    Exactly one of ``marketplace``, ``merchant`` and ``bank`` is set, as on the key itself.
    """

    api_key_id: int
    marketplace: Marketplace | None = None
    merchant: Merchant | None = None
    bank: bool = False

    is_authenticated = True
    is_anonymous = False

    def __post_init__(self) -> None:
        if [self.marketplace is not None, self.merchant is not None, self.bank].count(True) != 1:
            raise ValueError("A principal is a marketplace, a merchant or the bank, exactly one.")

    @property
    def kind(self) -> str:
        """'marketplace', 'merchant' or 'bank'."""
        if self.bank:
            return "bank"
        return "marketplace" if self.marketplace is not None else "merchant"

    @property
    def marketplace_id(self) -> int | None:
        return self.marketplace.pk if self.marketplace is not None else None

    @property
    def merchant_id(self) -> int | None:
        return self.merchant.pk if self.merchant is not None else None

    @property
    def scope(self) -> str:
        """What idempotency keys and rate limits are counted per: "marketplace:<id>",
        "merchant:<id>" or "bank", so no two parties share a key or a counter."""
        if self.bank:
            return "bank"
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


# The key and either owner, as select_related("marketplace", "merchant") loads them.
_LOADED: tuple[tuple[type[Model], str], ...] = ((ApiKey, "k"), (Marketplace, "mp"), (Merchant, "m"))
_M = TypeVar("_M", bound=Model)


def _active_key(prefix: str) -> ApiKey | None:
    """The unrevoked key with ``prefix``, its marketplace or merchant loaded with it.

    On PostgreSQL by a statement built once: compiling the select_related() query on every
    request cost twice what running it did.
    """
    if connection.vendor != "postgresql":  # elsewhere the ORM converts some values (SQLite)
        keys = ApiKey.objects.select_related("marketplace", "merchant")
        return keys.filter(prefix=prefix, revoked_at__isnull=True).first()
    with connection.cursor() as cursor:
        cursor.execute(_active_key_sql(), [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    api_key = _loaded(ApiKey, row, 0)
    marketplace_at = len(ApiKey._meta.concrete_fields)
    merchant_at = marketplace_at + len(Marketplace._meta.concrete_fields)
    # Assigned even when None, so that reading them queries nothing more, as select_related.
    api_key.marketplace = (
        _loaded(Marketplace, row, marketplace_at) if api_key.marketplace_id is not None else None
    )
    api_key.merchant = (
        _loaded(Merchant, row, merchant_at) if api_key.merchant_id is not None else None
    )
    return api_key


def _loaded(model: type[_M], row: Sequence[Any], start: int) -> _M:
    """The ``model`` instance whose columns start at ``row[start]``."""
    fields = model._meta.concrete_fields
    values = row[start : start + len(fields)]
    return model.from_db(connection.alias, [field.attname for field in fields], values)


@cache
def _active_key_sql() -> str:
    columns = ", ".join(
        f"{alias}.{connection.ops.quote_name(field.column)}"
        for model, alias in _LOADED
        for field in model._meta.concrete_fields
    )
    return (
        f"SELECT {columns} FROM merchants_apikey k"  # noqa: S608  (our column names, no input)
        " LEFT JOIN merchants_marketplace mp ON mp.id = k.marketplace_id"
        " LEFT JOIN merchants_merchant m ON m.id = k.merchant_id"
        " WHERE k.prefix = %s AND k.revoked_at IS NULL"
    )


class SignedApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiPrincipal, ApiKey]:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise _unauthorized("missing_api_key", "Send 'Authorization: Bearer <api_key>'.")
        if not key.isascii() or not key.strip().isprintable():
            raise _unauthorized("invalid_api_key", "The API key is unknown or revoked.")
        api_key = _active_key(credentials.key_prefix(key.strip()))
        if api_key is None or not credentials.key_matches(key.strip(), api_key.key_hash):
            raise _unauthorized("invalid_api_key", "The API key is unknown or revoked.")
        # Closing a merchant ends its keys without anyone having to revoke them one by one.
        if api_key.merchant is not None and api_key.merchant.status == Merchant.Status.CLOSED:
            raise _unauthorized("invalid_api_key", "The API key is unknown or revoked.")
        _last_used_mark(api_key.pk)
        principal = ApiPrincipal(
            api_key_id=api_key.pk,
            marketplace=api_key.marketplace,
            merchant=api_key.merchant,
            bank=api_key.bank,
        )
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            self._check_signature(request, api_key, principal)
        return principal, api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="chainfin"'

    def _check_signature(self, request: Request, api_key: ApiKey, principal: ApiPrincipal) -> None:
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
        # timestamp check refuses it anyway. A client retrying within the same second sends the
        # same bytes, and the signature then covers the same method, path and body: when that
        # request's response is stored under the same key, the retry may only fetch it.
        spent = not cache_add(f"sig:{api_key.pk}:{matched}", 1, 2 * TIMESTAMP_TOLERANCE_SECONDS)
        if spent and not replay_only_mark(request, scope=principal.scope):
            raise _unauthorized("replayed_signature", "This signature was already used.")


# When this process last wrote each key's last_used_at (monotonic seconds).
_last_marked: dict[int, float] = {}


def _last_used_mark(api_key_id: int) -> None:
    """Record that the key was used, to within LAST_USED_EVERY_SECONDS: a write per request
    would add a statement to every ingest, for a date people read to the day."""
    now = time.monotonic()
    if now - _last_marked.get(api_key_id, -math.inf) < settings.API_KEY_LAST_USED_EVERY_SECONDS:
        return
    _last_marked[api_key_id] = now
    ApiKey.objects.filter(pk=api_key_id).update(last_used_at=timezone.now())


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
