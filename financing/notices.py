"""Notices of assignment: telling a marketplace that the bank now owns receivables it will pay.

A notice is an outbox row written in the disbursement's transaction; a Celery task
(``financing.tasks.notice_send``) delivers it after commit as a signed webhook (the API's own
signature scheme, with the endpoint's secret) and retries with backoff until the marketplace
acknowledges it with a 2xx.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db.models import F

from config.api.signing import sign
from financing.models import Advance, AssignmentNotice, Receivable, WebhookEndpoint
from ledger.money import format_minor_units
from merchants.models import Marketplace, MarketplaceMerchant


class DeliveryFailed(Exception):
    """A transient failure (network, timeout, 5xx, 408, 429): worth another attempt."""


def notice_payload(advance: Advance, marketplace: Marketplace) -> dict[str, Any]:
    seller_id = (
        MarketplaceMerchant.objects.filter(marketplace=marketplace, merchant=advance.merchant)
        .values_list("seller_id", flat=True)
        .first()
    )
    # Each marketplace hears of the receivables it sent, not of another's.
    sent = set(
        Receivable.objects.filter(
            merchant_id=advance.merchant_id,
            source=marketplace.code,
            ref__in=advance.assignments.values("invoice_ref"),
        ).values_list("ref", flat=True)
    )
    return {
        "type": "notice_of_assignment",
        "advance": advance.ref,
        "merchant": seller_id,
        "assignee": settings.CHAINFIN_BANK_NAME,
        "pay_to": {
            "account_holder": settings.CHAINFIN_BANK_NAME,
            "iban": settings.CHAINFIN_COLLECTION_IBAN,
            "bic": settings.CHAINFIN_COLLECTION_BIC,
            "reference": advance.ref,
        },
        "receivables": [
            {
                # Named as in GET /receivables: one vocabulary for a receivable, however told.
                "ref": a.invoice_ref,
                "currency": advance.currency,
                "face": format_minor_units(a.face_minor, advance.currency),
                "due_date": a.due_date.isoformat(),
            }
            for a in advance.assignments.order_by("id")
            if a.invoice_ref in sent
        ],
    }


def notice_deliver(*, notice_id: int, now: datetime) -> None:
    """Deliver one notice once, as of ``now``.

    A marketplace's definite refusal (4xx other than 408/429) fails the notice; a missing
    endpoint leaves it pending (one may be configured later). Neither is retried.

    :raises DeliveryFailed: a transient failure, to be retried.
    """
    notice = AssignmentNotice.objects.select_related("marketplace").get(pk=notice_id)
    if notice.status == AssignmentNotice.Status.DELIVERED:
        return
    endpoint = WebhookEndpoint.objects.filter(marketplace=notice.marketplace, active=True).first()
    if endpoint is None:
        _record(notice, now, error="The marketplace has no active webhook endpoint.")
        return
    body = json.dumps(notice.payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))  # the moment of sending: a receiver refuses stale ones
    url = urlsplit(endpoint.url)
    path = url.path + (f"?{url.query}" if url.query else "")
    headers = {
        "Content-Type": "application/json",
        "Chainfin-Timestamp": timestamp,
        "Chainfin-Signature": sign(endpoint.secret, timestamp, "POST", path or "/", body),
        "Idempotency-Key": f"notice:{notice.advance_id}:{notice.marketplace_id}",
    }
    try:
        response = requests.post(
            endpoint.url,
            data=body,
            headers=headers,
            timeout=settings.FINANCING_WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        _record(notice, now, error=f"{type(exc).__name__}: {exc}")
        raise DeliveryFailed(str(exc)) from exc
    if 200 <= response.status_code < 300:
        _record(notice, now, delivered=True)
    elif response.status_code >= 500 or response.status_code in (408, 429):
        _record(notice, now, error=f"HTTP {response.status_code}")
        raise DeliveryFailed(f"HTTP {response.status_code}")
    else:
        _record(
            notice,
            now,
            error=f"HTTP {response.status_code}: refused by the marketplace",
            failed=True,
        )


def notice_give_up(*, notice_id: int, error: str) -> None:
    """Fail a notice that was not delivered after every retry, with ``error`` for the officers."""
    AssignmentNotice.objects.filter(pk=notice_id).exclude(
        status=AssignmentNotice.Status.DELIVERED
    ).update(status=AssignmentNotice.Status.FAILED, last_error=error)


def _record(
    notice: AssignmentNotice,
    now: datetime,
    *,
    delivered: bool = False,
    failed: bool = False,
    error: str = "",
) -> None:
    # In the database: a redelivered task running beside a slow first attempt counts both.
    notice.attempts = F("attempts") + 1
    notice.last_error = error[:2000]
    if delivered:
        notice.status = AssignmentNotice.Status.DELIVERED
        notice.delivered_at = now
    elif failed:  # a definite refusal: an officer must talk to the marketplace
        notice.status = AssignmentNotice.Status.FAILED
    notice.save(update_fields=["attempts", "last_error", "status", "delivered_at"])
