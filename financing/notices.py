"""Notices of assignment: telling each debtor that the bank now owns receivables it must pay.

The assignment is perfected against a debtor once that debtor is told, so the notice goes to
whoever owes the money: a marketplace that owes its sellers' invoices hears by signed webhook
(the API's own signature scheme, with the endpoint's sealed secret), a business buyer by e-mail
with the notice as a PDF. A notice is an outbox row written in the disbursement's transaction;
a Celery task (``financing.tasks.notice_send``) delivers it after commit and retries transient
failures with backoff. Without an endpoint or address it waits, pending, until the sweep
(``notices_waiting_release``) finds one; an officer may re-send a failed one
(``notice_resend``). Every attempt is a ``NoticeAttempt``, the delivery history officers read.
"""

from __future__ import annotations

import json
import smtplib
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Q

from config.api.signing import sign
from financing.exceptions import WrongState
from financing.models import (
    Advance,
    Assignment,
    AssignmentNotice,
    NoticeAttempt,
    Receivable,
    WebhookEndpoint,
)
from financing.notice_letters import letter_pdf, letter_subject, letter_text
from financing.services._shared import officer_require
from ledger.money import format_minor_units
from ledger.sql import placeholders, rows_later
from ledger.writer import rows_insert_returning_later
from merchants.models import Debtor

Outcome = NoticeAttempt.Outcome


class DeliveryFailed(Exception):
    """A transient failure (network, timeout, 5xx, 408, 429, a busy mail server): retry."""


def payment_reference(fingerprint: str) -> str:
    """The invoice's ISO 11649 creditor reference ("RF" + check digits + 20 characters).

    Derived from the invoice's fingerprint, so one invoice has one reference however often it
    is financed, and a payment quoting it names the invoice, not the advance.
    """
    body = fingerprint[:20].upper()
    digits = "".join(str(int(c, 36)) for c in body + "RF00")
    return f"RF{98 - int(digits) % 97:02d}{body}"


def seller_ids_later(advance: Advance) -> Callable[[], dict[int, str]]:
    """Read the merchant's seller id at each marketplace among ``advance``'s debtors (one per
    marketplace at most: a unique constraint), by marketplace id; loaded when called, so that
    the read can go with others (``ledger.sql.one_round_trip``). A notice to a marketplace
    names the merchant by it.

    Plain SQL, one statement for every marketplace: every disbursement writes a notice, and
    the ORM's query cost twice this.
    """
    marketplaces = sorted(
        {a.debtor.marketplace_id for a in advance.assignments_by_id() if a.debtor.marketplace_id}
    )
    if not marketplaces:
        return dict
    read = rows_later(
        "SELECT marketplace_id, seller_id FROM merchants_marketplacemerchant"  # noqa: S608
        f" WHERE merchant_id = %s AND marketplace_id IN ({placeholders(len(marketplaces))})",
        [advance.merchant_id, *marketplaces],  # (placeholders only)
    )
    return lambda: {marketplace_id: str(seller_id) for marketplace_id, seller_id in read()}


def notices_create_later(
    *, advance: Advance, seller_ids: Mapping[int, str], now: datetime
) -> Callable[[], list[AssignmentNotice]]:
    """Write one notice per debtor of ``advance``'s receivables, in the caller's transaction,
    and return what gives them with their ids: the INSERT is sent now (inside
    ``ledger.sql.one_round_trip``, with the statements sent with it).

    ``seller_ids``: the merchant's seller id by marketplace (``seller_ids_later``). A business
    buyer without an address on file gets the one its invoice carried, if any.
    """
    by_debtor: dict[int, list[Assignment]] = defaultdict(list)
    for assignment in advance.assignments_by_id():
        by_debtor[assignment.debtor_id].append(assignment)
    notices = []
    for assignments in by_debtor.values():
        debtor = assignments[0].debtor
        if debtor.kind == Debtor.Kind.BUSINESS and not debtor.email:
            _address_from_invoices(advance, debtor, assignments)
        notices.append(
            AssignmentNotice(
                advance=advance,
                debtor=debtor,
                channel=AssignmentNotice.Channel.WEBHOOK
                if debtor.marketplace_id
                else AssignmentNotice.Channel.EMAIL,
                marketplace_id=debtor.marketplace_id,
                payload=notice_payload(advance, debtor, assignments, seller_ids),
                created_at=now,
            )
        )
    inserted = rows_insert_returning_later(notices)  # one INSERT, ids read back

    def load() -> list[AssignmentNotice]:
        inserted()
        return notices

    return load


def notice_payload(
    advance: Advance, debtor: Debtor, assignments: list[Assignment], seller_ids: Mapping[int, str]
) -> dict[str, Any]:
    """What the notice says: the assignee, where to pay, and each invoice's own reference;
    to a marketplace, the merchant by its seller id there (``seller_ids``, by marketplace)."""
    payload: dict[str, Any] = {
        "type": "notice_of_assignment",
        "advance": advance.ref,
        "assignee": settings.CHAINFIN_BANK_NAME,
        "pay_to": {
            "account_holder": settings.CHAINFIN_BANK_NAME,
            "iban": settings.CHAINFIN_COLLECTION_IBAN,
            "bic": settings.CHAINFIN_COLLECTION_BIC,
        },
        "receivables": [
            {
                # Named as in GET /receivables: one vocabulary for a receivable, however told.
                "ref": a.invoice_ref,
                "currency": advance.currency,
                "face": format_minor_units(a.face_minor, advance.currency),
                "due_date": a.due_date.isoformat(),
                "payment_reference": payment_reference(a.fingerprint),
            }
            for a in assignments
        ],
    }
    if debtor.marketplace_id is not None:  # the marketplace knows the merchant by its seller id
        payload["merchant"] = seller_ids.get(debtor.marketplace_id)
        return payload
    merchant = advance.merchant
    payload["supplier"] = {
        "name": merchant.legal_name,
        "tax_id": merchant.tax_id,
        "country": merchant.country,
    }
    payload["debtor"] = {"name": debtor.name, "tax_id": debtor.tax_id, "country": debtor.country}
    return payload


def notice_deliver(*, notice_id: int, now: datetime) -> None:
    """Deliver one notice once, as of ``now``, by its channel.

    A definite refusal (4xx other than 408/429, a refused address) fails the notice; a missing
    endpoint or address leaves it pending and waiting for the sweep. Neither is retried.

    :raises DeliveryFailed: a transient failure, to be retried.
    """
    notice = AssignmentNotice.objects.select_related("debtor", "advance").get(pk=notice_id)
    if notice.status == AssignmentNotice.Status.DELIVERED:
        return
    if notice.channel == AssignmentNotice.Channel.WEBHOOK:
        _webhook_deliver(notice, now)
    else:
        _email_deliver(notice, now)


def notice_give_up(*, notice_id: int, error: str, now: datetime) -> None:
    """Fail a notice that was not delivered after every retry, with ``error`` for the officers."""
    with transaction.atomic():
        failed = (
            AssignmentNotice.objects.filter(pk=notice_id)
            .exclude(status=AssignmentNotice.Status.DELIVERED)
            .update(status=AssignmentNotice.Status.FAILED, waiting=False, last_error=error[:2000])
        )
        if failed:
            notice = AssignmentNotice.objects.get(pk=notice_id)
            NoticeAttempt.objects.create(
                notice=notice, at=now, channel=notice.channel, outcome=Outcome.GAVE_UP, detail=error
            )


def notices_waiting_send(*, now: datetime) -> list[int]:
    """Send the waiting notices whose debtor now has an endpoint or address; return their ids.

    Each is claimed by a conditional update, so two sweeps running at once never send one
    twice, and enqueued once the claim commits.
    """
    reachable = Q(
        channel=AssignmentNotice.Channel.WEBHOOK,
        marketplace__webhook_endpoint__active=True,
    ) | (Q(channel=AssignmentNotice.Channel.EMAIL) & ~Q(debtor__email=""))
    candidates = AssignmentNotice.objects.filter(
        reachable, status=AssignmentNotice.Status.PENDING, waiting=True
    ).values_list("pk", flat=True)
    released = []
    with transaction.atomic():
        for notice_id in candidates:
            if AssignmentNotice.objects.filter(
                pk=notice_id, status=AssignmentNotice.Status.PENDING, waiting=True
            ).update(waiting=False):
                released.append(notice_id)
                _send_on_commit(notice_id)
    return released


def notice_resend(*, notice: AssignmentNotice, officer: User, now: datetime) -> AssignmentNotice:
    """Send a failed notice again, recording who asked in its history.

    Returns the notice, pending again; its delivery is enqueued once the change commits.

    :raises NotPermitted: the officer may not re-send notices.
    :raises WrongState: the notice is not failed (delivered, or still being tried).
    """
    officer_require(officer, "financing.resend_assignmentnotice")
    with transaction.atomic():
        if not AssignmentNotice.objects.filter(
            pk=notice.pk, status=AssignmentNotice.Status.FAILED
        ).update(status=AssignmentNotice.Status.PENDING, waiting=False, last_error=""):
            raise WrongState(f"Only a failed notice can be re-sent; {notice} is not failed.")
        NoticeAttempt.objects.create(
            notice=notice,
            at=now,
            channel=notice.channel,
            outcome=Outcome.RESENT,
            officer=officer,
            detail=f"Re-sent by {officer.get_username()}",
        )
        _send_on_commit(notice.pk)
    notice.refresh_from_db()
    return notice


def _send_on_commit(notice_id: int) -> None:
    from financing import tasks  # here, not at the top: the tasks module imports this one

    tasks.notice_send_on_commit(notice_id)


def _address_from_invoices(advance: Advance, debtor: Debtor, assignments: list[Assignment]) -> None:
    bodies = (
        Receivable.objects.filter(
            merchant_id=advance.merchant_id, ref__in=[a.invoice_ref for a in assignments]
        )
        .order_by("-entry_id")
        .values_list("entry__body", flat=True)
    )
    for body in bodies:
        email = orjson.loads(bytes(body))["data"]["debtor"].get("email")
        if email:
            # Only where none is on file: an address an officer entered is never overwritten.
            Debtor.objects.filter(pk=debtor.pk, email="").update(email=email)
            debtor.refresh_from_db(fields=["email"])
            return


def _webhook_deliver(notice: AssignmentNotice, now: datetime) -> None:
    endpoint = WebhookEndpoint.objects.filter(marketplace=notice.marketplace, active=True).first()
    if endpoint is None:
        _record(
            notice, now, Outcome.UNADDRESSED, "", "The marketplace has no active webhook endpoint."
        )
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
        _record(notice, now, Outcome.TRANSIENT, endpoint.url, f"{type(exc).__name__}: {exc}")
        raise DeliveryFailed(str(exc)) from exc
    status = response.status_code
    if 200 <= status < 300:
        _record(notice, now, Outcome.DELIVERED, endpoint.url, f"HTTP {status}")
    elif status >= 500 or status in (408, 429):
        _record(notice, now, Outcome.TRANSIENT, endpoint.url, f"HTTP {status}")
        raise DeliveryFailed(f"HTTP {status}")
    else:  # a definite refusal: an officer must talk to the marketplace
        _record(
            notice, now, Outcome.REFUSED, endpoint.url, f"HTTP {status}: refused by the marketplace"
        )


def _email_deliver(notice: AssignmentNotice, now: datetime) -> None:
    address = Debtor.objects.values_list("email", flat=True).get(pk=notice.debtor_id)
    if not address:
        _record(notice, now, Outcome.UNADDRESSED, "", "The buyer has no e-mail address on file.")
        return
    payload = notice.payload
    message = EmailMessage(
        subject=letter_subject(payload),
        body=letter_text(payload, dated=notice.created_at),
        from_email=settings.FINANCING_NOTICE_FROM_EMAIL,
        to=[address],
        # One Message-ID per notice: a retried send after a lost acknowledgement is one message
        # to the buyer's mail system, which drops the duplicate.
        headers={"Message-ID": f"<notice-{notice.pk}-{notice.advance.ref}@chainfin>"},
    )
    message.attach(
        f"notice-of-assignment-{notice.advance.ref}.pdf",
        letter_pdf(payload, dated=notice.created_at),
        "application/pdf",
    )
    try:
        message.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        _record(notice, now, Outcome.REFUSED, address, f"Address refused: {exc}")
        return
    except (smtplib.SMTPException, OSError) as exc:
        _record(notice, now, Outcome.TRANSIENT, address, f"{type(exc).__name__}: {exc}")
        raise DeliveryFailed(str(exc)) from exc
    _record(notice, now, Outcome.DELIVERED, address, "Accepted by the mail server")


def _record(
    notice: AssignmentNotice, now: datetime, outcome: str, destination: str, detail: str
) -> None:
    # Counted in the database: a redelivered task running beside a slow first attempt counts both.
    notice.attempts = F("attempts") + 1
    notice.last_error = "" if outcome == Outcome.DELIVERED else detail[:2000]
    notice.waiting = outcome == Outcome.UNADDRESSED  # pending until an address exists
    if outcome == Outcome.DELIVERED:
        notice.status = AssignmentNotice.Status.DELIVERED
        notice.delivered_at = now
    elif outcome == Outcome.REFUSED:
        notice.status = AssignmentNotice.Status.FAILED
    with transaction.atomic():
        notice.save(update_fields=["attempts", "last_error", "waiting", "status", "delivered_at"])
        NoticeAttempt.objects.create(
            notice=notice,
            at=now,
            channel=notice.channel,
            destination=destination[:500],
            outcome=outcome,
            detail=detail[:2000],
        )
