"""The settlement outbox: financing's projector writes a ``SettlementWork`` row in the transaction
that appends a payout or a dilution, and the worker is asked once that commits.

A payout is the bank's money to settle once the merchant has had an advance in its currency:
the notice of assignment sent at that first disbursement redirects its marketplace's payouts
to the bank's collection account. Before that, payouts go to the merchant directly and are
evidence only (the invoices they pay stop being receivables). A dilution matters only to a
receivable assigned to the bank.

The insert ignores a row that exists, so ``rebuild_projections`` replaying the entries writes
and enqueues nothing twice.
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.utils import timezone

from financing import tasks
from financing.models import Advance, Assignment, SettlementWork
from ledger.models import Entry, Invoice
from ledger.projections.registry import projector

DILUTION_TYPES = ("invoice.credited", "shipment.returned", "order.cancelled")

_INSERT = """
INSERT INTO financing_settlementwork (entry_id, merchant_id, kind, status, created_at,
                                      enqueued_at, attempts)
VALUES (%s, %s, %s, 'pending', %s, %s, 0)
ON CONFLICT (entry_id) DO NOTHING
RETURNING id
"""


@projector("payout.settled", *DILUTION_TYPES)
def settlement_work_record(*, entry: Entry, data: dict[str, Any]) -> None:
    if entry.type == "payout.settled":
        if not _collected_by_bank(entry.chain_id, data["currency"]):
            return
        kind = SettlementWork.Kind.PAYOUT
    else:
        if not _assigned_receivables(entry, data):
            return
        kind = SettlementWork.Kind.DILUTION
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_INSERT, [entry.pk, entry.chain_id, kind, now, now])
        row = cursor.fetchone()
    if row is not None:
        tasks.settlement_enqueue_on_commit(row[0])


def _collected_by_bank(merchant_id: int, currency: str) -> bool:
    return Advance.objects.filter(
        merchant_id=merchant_id, currency=currency, disbursed_at__isnull=False
    ).exists()


def _assigned_receivables(entry: Entry, data: dict[str, Any]) -> bool:
    assigned = Assignment.objects.filter(
        merchant_id=entry.chain_id, status=Assignment.Status.ASSIGNED
    )
    if entry.type == "invoice.credited":
        return assigned.filter(invoice_ref=data["invoice_ref"]).exists()
    order_ref = data["order_ref"] if entry.type == "shipment.returned" else entry.external_ref
    invoices = Invoice.objects.filter(merchant_id=entry.chain_id, order_ref=order_ref)
    return assigned.filter(invoice_ref__in=invoices.values("ref")).exists()
