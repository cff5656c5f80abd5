"""A caller's view of the API: a credential and a client that signs like the README says."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from config.api.signing import sign
from merchants.models import Marketplace, Merchant
from merchants.services import api_key_issue, marketplace_create

_keys = itertools.count(1)


@dataclass
class SignedClient:
    """Sends requests as one marketplace (or, with a merchant key, one merchant), signing POSTs."""

    http: Client
    marketplace: Marketplace | None
    key: str
    secret: str
    merchant: Merchant | None = None

    def get(self, path: str, **extra: Any) -> Any:
        return self.http.get(path, HTTP_AUTHORIZATION=f"Bearer {self.key}", **extra)

    def post(
        self,
        path: str,
        body: Any,
        *,
        content_type: str = "application/json",
        idempotency_key: str | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> Any:
        """POST ``body`` signed now (or at ``timestamp``); ``idempotency_key=""`` sends none.

        A retry must be signed again; within one second the same body and timestamp give the
        same signature, which is refused as a replay, so tests retry with an older timestamp.
        """
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = sign(secret or self.secret, stamp, "POST", path, raw)
        headers = {
            "HTTP_AUTHORIZATION": f"Bearer {self.key}",
            "HTTP_CHAINFIN_TIMESTAMP": stamp,
            "HTTP_CHAINFIN_SIGNATURE": signature,
        }
        if idempotency_key is None:
            idempotency_key = f"test-{next(_keys)}-{time.time_ns()}"
        if idempotency_key:
            headers["HTTP_IDEMPOTENCY_KEY"] = idempotency_key
        return self.http.generic("POST", path, raw, content_type=content_type, **headers)


def signed_client(marketplace: Marketplace) -> SignedClient:
    issued = api_key_issue(marketplace=marketplace, now=timezone.now())
    return SignedClient(Client(), marketplace, issued.key, issued.signing_secret)


def merchant_signed_client(merchant: Merchant) -> SignedClient:
    """A client holding a merchant key: it acts for ``merchant`` alone."""
    issued = api_key_issue(merchant=merchant, now=timezone.now())
    return SignedClient(Client(), None, issued.key, issued.signing_secret, merchant=merchant)


@pytest.fixture
def api(marketplace: Marketplace) -> SignedClient:
    return signed_client(marketplace)


@pytest.fixture
def rival(db: None) -> SignedClient:
    """Another marketplace, with merchants of its own that ``api`` must never reach."""
    return signed_client(marketplace_create(code=f"rival{next(_keys)}", name="Rival Market"))


def seller_id(merchant: Merchant) -> str:
    return merchant.links.get().seller_id


def invoice_event(merchant: Merchant, ref: str = "INV-1", **data: Any) -> dict[str, Any]:
    return {
        "type": "invoice.issued",
        "merchant": seller_id(merchant),
        "ref": ref,
        "occurred_at": "2026-10-01T09:30:00+02:00",
        "data": {
            "currency": "EUR",
            "amount": "1250.00",
            "order_ref": "ORD-1",
            "issue_date": "2026-10-01",
            "due_date": "2026-10-31",
            "debtor": {"kind": "marketplace", "name": "Acme"},
        }
        | data,
    }


def order_event(merchant: Merchant, ref: str = "ORD-1", amount: str = "1500.00") -> dict[str, Any]:
    return {
        "type": "order.placed",
        "merchant": seller_id(merchant),
        "ref": ref,
        "occurred_at": "2026-09-30T12:00:00Z",
        "data": {"currency": "EUR", "amount": amount},
    }
