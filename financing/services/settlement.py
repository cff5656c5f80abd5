"""Settlement: payouts repay financed receivables through the waterfall, dilution after funding
becomes recourse, advances whose receivables all closed are repaid and give their facility's
room back.

Every payout and every dilution event reaches a worker through an outbox row
(``SettlementWork``, written by financing's projector in the append transaction). Applying one
is exactly once by construction: the row is claimed (pending → done) by a conditional update in
the transaction that writes every effect, each line's allocation is unique per (payout entry,
line), and journal and chain entries are keyed by the payout. A worker that dies mid-way rolls
its claim back with its effects, and the redelivered task does the work once.

Lock order (``financing.locks``): the advances concerned with their facilities, then the
merchant's chain (which serialises one merchant's settlements), then the accounts.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from financing.locks import advance_qs_for_update, merchant_chain_lock
from financing.models import Advance, Assignment, DeadLetter, SettlementWork
from financing.services.settlement_run import SettlementRun
from ledger.events import ValidEvent
from ledger.models import Entry, Invoice
from ledger.services import NewEntry, entries_append
from merchants.models import Merchant


class SettlementContended(Exception):
    """Receivables kept moving between advances while settlement waited for its locks; a
    retry finds them still. Transient: the task retries it; no API ever answers with it."""


class _AdvancesMoved(Exception):
    pass


def settlement_work_run(*, work_id: int, now: datetime) -> bool:
    """Apply one payout's or dilution's effects, exactly once; False when done already.

    :raises SettlementContended: the receivables concerned kept changing advance; retry.
    """
    work = SettlementWork.objects.select_related("entry", "merchant").filter(pk=work_id).first()
    if work is None or work.status != SettlementWork.Status.PENDING:
        return False
    data = orjson.loads(bytes(work.entry.body))["data"]
    for _ in range(3):
        try:
            with transaction.atomic():
                _lock_timeout_set()
                return _run_locked(work, data, now)
        except _AdvancesMoved:
            continue
    raise SettlementContended(f"Settlement of entry {work.entry_id} kept being overtaken.")


def settlement_work_dead_letter(
    *, work_id: int, task_name: str, error: str, attempts: int, now: datetime
) -> DeadLetter | None:
    """Give up on a piece of work that kept failing: record it for officers, stop re-sending it.

    Returns None when the work is no longer pending (another delivery finished it meanwhile):
    officers are not shown a dead letter for work that is done.
    """
    with transaction.atomic():
        given_up = SettlementWork.objects.filter(
            pk=work_id, status=SettlementWork.Status.PENDING
        ).update(status=SettlementWork.Status.DEAD)
        if not given_up:
            return None
        return DeadLetter.objects.create(
            task_name=task_name,
            task_kwargs={"work_id": work_id},
            work_id=work_id,
            error=error[:4000],
            attempts=attempts,
            failed_at=now,
        )


def settlement_work_resend_due(*, now: datetime) -> list[int]:
    """Mark as sent again, and return, the work still pending a while after it was last sent:
    an enqueue lost to a crash between commit and send, or a worker that died holding it."""
    stale = now - timedelta(seconds=settings.SETTLEMENT_RESEND_AFTER_SECONDS)
    pending = SettlementWork.objects.filter(status=SettlementWork.Status.PENDING)
    with transaction.atomic():
        # Two sweeps that overlap (beat behind a backlog) each take rows the other has not.
        ids = list(
            pending.filter(enqueued_at__lt=stale)
            .select_for_update(skip_locked=True)
            .order_by("pk")
            .values_list("pk", flat=True)[: settings.SETTLEMENT_RESEND_BATCH]
        )
        pending.filter(pk__in=ids).update(enqueued_at=now)
    return ids


def settlement_line_apply(
    *,
    merchant: Merchant,
    event: ValidEvent,
    currency: str,
    invoice_ref: str,
    amount_minor: int,
    key: str,
    now: datetime,
) -> Entry:
    """Apply money the merchant's suspense account holds as line 0 of the system entry that
    ``event`` appends: the path of a payout line, minus its collection (the money came in
    already). ``invoice_ref`` empty passes it to the merchant, less recourse it owes.

    Runs in the caller's transaction (which marks what the money came from as used) and takes
    settlement's locks in settlement's order; one journal entry keyed ``key``. Return the entry.

    :raises SettlementContended: the receivable kept changing advance; try again.
    """
    refs = [invoice_ref] if invoice_ref else []
    known = Invoice.objects.filter(
        merchant_id=merchant.pk, ref__in=refs, currency=currency
    ).exists()
    for _ in range(3):
        try:
            with transaction.atomic():
                advances = _advances_lock(merchant.pk, refs)
                merchant_chain_lock(merchant_id=merchant.pk)
                assignments = _assignments_lock(merchant.pk, refs, advances)
                [receipt] = entries_append(
                    source=settings.LEDGER_SYSTEM_SOURCE,
                    entries=[NewEntry(merchant_id=merchant.pk, event=event)],
                    now=now,
                )
                entry = Entry.objects.get(chain_id=merchant.pk, seq=receipt.seq)
                run = SettlementRun(merchant, entry, currency, assignments, now)
                run.line_apply(0, invoice_ref, amount_minor, known=known)
                run.finish(key=key)
                return entry
        except _AdvancesMoved:
            continue
    raise SettlementContended(f"Allocation {key} kept being overtaken.")


def _lock_timeout_set() -> None:
    # A lock held too long (a stuck transaction, a long report) fails this attempt with an
    # OperationalError the task retries, instead of tying up a worker indefinitely.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, true)",
                [f"{settings.SETTLEMENT_LOCK_TIMEOUT_MS}ms"],
            )


def _invoice_refs(entry: Entry, data: dict[str, Any]) -> list[str]:
    if entry.type == "payout.settled":
        return [line["invoice_ref"] for line in data.get("lines", [])]
    if entry.type == "invoice.credited":
        return [data["invoice_ref"]]
    order_ref = data["order_ref"] if entry.type == "shipment.returned" else entry.external_ref
    return list(
        Invoice.objects.filter(merchant_id=entry.chain_id, order_ref=order_ref).values_list(
            "ref", flat=True
        )
    )


def _assigned(merchant_id: int, refs: list[str]) -> Any:
    return Assignment.objects.filter(
        merchant_id=merchant_id, invoice_ref__in=refs, status=Assignment.Status.ASSIGNED
    )


def _advances_lock(merchant_id: int, refs: list[str]) -> dict[int, Advance]:
    advance_ids = set(_assigned(merchant_id, refs).values_list("advance_id", flat=True))
    return {
        a.pk: a
        for a in advance_qs_for_update().select_related("facility").filter(pk__in=advance_ids)
    }


def _assignments_lock(
    merchant_id: int, refs: list[str], advances: dict[int, Advance]
) -> dict[str, Assignment]:
    assignments = {
        a.invoice_ref: a for a in _assigned(merchant_id, refs).select_for_update().order_by("pk")
    }
    if {a.advance_id for a in assignments.values()} - advances.keys():
        raise _AdvancesMoved  # disbursed while we waited for the chain: lock its advance too
    for assignment in assignments.values():
        assignment.advance = advances[assignment.advance_id]
    return assignments


def _run_locked(work: SettlementWork, data: dict[str, Any], now: datetime) -> bool:
    entry = work.entry
    refs = _invoice_refs(entry, data)
    advances = _advances_lock(work.merchant_id, refs)
    merchant_chain_lock(merchant_id=work.merchant_id)
    claimed = SettlementWork.objects.filter(
        pk=work.pk, status=SettlementWork.Status.PENDING
    ).update(status=SettlementWork.Status.DONE, done_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return False
    assignments = _assignments_lock(work.merchant_id, refs, advances)
    if entry.type == "payout.settled":
        run = SettlementRun(work.merchant, entry, data["currency"], assignments, now)
        run.payout_apply(data)
        run.finish(key=f"settle:{entry.pk}")
        return True
    # Returns and cancellations name no currency: each currency financed is its own run.
    currencies = {data["currency"]} if "currency" in data else set()
    for currency in sorted(currencies or {a.advance.currency for a in assignments.values()}):
        run = SettlementRun(work.merchant, entry, currency, assignments, now)
        run.dilution_apply(entry.type, data)
        run.finish(key=f"dilute:{entry.pk}:{currency}")
    return True
