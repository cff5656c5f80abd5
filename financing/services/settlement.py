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

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum

from financing.business_day import business_day
from financing.locks import advance_qs_for_update, merchant_chain_lock
from financing.models import (
    Advance,
    Assignment,
    DeadLetter,
    LineAllocation,
    Recourse,
    SettlementWork,
    SuspenseItem,
)
from financing.settlement_books import SettlementBooks, chain_ref
from financing.waterfall import (
    ReceivableBalance,
    dilution_take,
    payment_split,
    receivable_close,
)
from ledger.events import ValidEvent
from ledger.models import Entry, Invoice
from ledger.money import parse_minor_units
from ledger.services import NewEntry, entries_append
from merchants.models import Merchant

DILUTION_TYPES = ("invoice.credited", "shipment.returned", "order.cancelled")
_RECOURSE_REASONS = {
    "invoice.credited": Recourse.Reason.CREDIT_NOTE,
    "shipment.returned": Recourse.Reason.RETURN,
    "order.cancelled": Recourse.Reason.CANCELLATION,
}


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
                run = _Run(merchant, entry, currency, assignments, now)
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
        run = _Run(work.merchant, entry, data["currency"], assignments, now)
        run.payout_apply(data)
        run.finish(key=f"settle:{entry.pk}")
        return True
    # Returns and cancellations name no currency: each currency financed is its own run.
    currencies = {data["currency"]} if "currency" in data else set()
    for currency in sorted(currencies or {a.advance.currency for a in assignments.values()}):
        run = _Run(work.merchant, entry, currency, assignments, now)
        run.dilution_apply(entry.type, data)
        run.finish(key=f"dilute:{entry.pk}:{currency}")
    return True


@dataclass
class _Receivable:
    """An assignment being settled, with its balance as the run moves it."""

    assignment: Assignment
    balance: ReceivableBalance
    recourse: dict[str, int] = field(default_factory=dict)

    def recourse_add(self, reason: str, amount_minor: int) -> None:
        self.recourse[reason] = self.recourse.get(reason, 0) + amount_minor


class _Run:
    """One settlement of one merchant: lines applied in order, effects written at the end."""

    def __init__(
        self,
        merchant: Merchant,
        entry: Entry,
        currency: str,
        assignments: dict[str, Assignment],
        now: datetime,
    ) -> None:
        self.entry = entry
        self.now = now
        self.books = SettlementBooks(merchant=merchant, currency=currency, now=now)
        self.receivables = {
            ref: _Receivable(a, _balance(a))
            for ref, a in assignments.items()
            if a.advance.currency == currency
        }
        self.allocations: list[LineAllocation] = []
        self.suspense: list[SuspenseItem] = []

    # -- payouts ---------------------------------------------------------------------------

    def payout_apply(self, data: dict[str, Any]) -> None:
        currency = self.books.currency
        total = parse_minor_units(data["amount"], currency)
        self.books.move(total, debit="collections_clearing", credit="suspense")
        lines = data.get("lines", [])
        known = set(
            Invoice.objects.filter(
                merchant_id=self.entry.chain_id,
                ref__in=[line["invoice_ref"] for line in lines],
                currency=currency,
            ).values_list("ref", flat=True)
        )
        named = 0
        for index, line in enumerate(lines):
            amount = parse_minor_units(line["amount"], currency)
            named += amount
            self.line_apply(index, line["invoice_ref"], amount, known=line["invoice_ref"] in known)
        if total > named:
            why = "Part of the payout that no line names." if lines else "A payout without lines."
            self._suspense_hold(None, "", total - named, why)

    def line_apply(self, index: int, ref: str, amount: int, *, known: bool) -> None:
        """Apply ``amount``, held on the merchant's suspense account, as line ``index`` naming
        invoice ``ref``: through the waterfall to a financed receivable, to the merchant for a
        ``known`` unfinanced one or, ``ref`` empty, for money officers pass through; else it
        stays in suspense."""
        if ref in self.receivables:
            self._financed_line(index, ref, amount)
        elif known or not ref:
            self._merchant_line(index, ref, amount)
        else:
            currency = self.books.currency
            why = f"Line {index} names invoice '{ref}', unknown in {currency} for this merchant."
            self._allocate(index, ref, amount, LineAllocation.Target.SUSPENSE, to_suspense=amount)
            self._suspense_hold(index, ref, amount, why)

    def _financed_line(self, index: int, ref: str, amount: int) -> None:
        receivable = self.receivables[ref]
        split = payment_split(receivable.balance, amount)
        receivable.balance = split.after
        books = self.books
        # The line's money leaves suspense for the receivable, except any overpayment.
        books.move(split.applied, debit="suspense", credit="advances_receivable")
        self._late_fees_settle(
            receivable, split.late_fees_from_reserve, split.late_fees_to_recourse
        )
        netted = books.pay_merchant(split.to_merchant, debit="reserve_payable")
        allocation = self._allocate(
            index,
            ref,
            amount,
            LineAllocation.Target.FINANCED,
            assignment=receivable.assignment,
            to_late_fees=split.to_late_fees,
            to_principal=split.to_principal,
            to_merchant=split.to_merchant,
            to_suspense=split.to_suspense,
            netted=netted,
        )
        if split.to_suspense:
            self._suspense_hold(index, ref, split.to_suspense, f"Overpayment of invoice '{ref}'.")
        self._settled_event(allocation, receivable.balance.owed_by_debtor)
        if receivable.balance.closed:
            self._close(receivable)

    def _merchant_line(self, index: int, ref: str, amount: int) -> None:
        # An unfinanced receivable: the money is the merchant's, less recourse it owes.
        netted = self.books.pay_merchant(amount, debit="suspense")
        allocation = self._allocate(
            index, ref, amount, LineAllocation.Target.MERCHANT, to_merchant=amount, netted=netted
        )
        if ref:  # money passed through without an invoice settles no receivable
            self._settled_event(allocation, 0)

    def _allocate(
        self,
        index: int,
        ref: str,
        amount: int,
        target: str,
        *,
        assignment: Assignment | None = None,
        to_late_fees: int = 0,
        to_principal: int = 0,
        to_merchant: int = 0,
        to_suspense: int = 0,
        netted: int = 0,
    ) -> LineAllocation:
        allocation = LineAllocation(
            payout_entry=self.entry,
            line=index,
            merchant_id=self.entry.chain_id,
            currency=self.books.currency,
            invoice_ref=ref,
            target=target,
            assignment=assignment,
            amount_minor=amount,
            to_late_fees_minor=to_late_fees,
            to_principal_minor=to_principal,
            to_merchant_minor=to_merchant,
            to_suspense_minor=to_suspense,
            recourse_netted_minor=netted,
            settled_at=self.now,
        )
        self.allocations.append(allocation)
        return allocation

    def _suspense_hold(self, line: int | None, ref: str, amount: int, reason: str) -> None:
        # The money stays on the suspense account, where payout_apply put it.
        self.suspense.append(
            SuspenseItem(
                ref=chain_ref("sus", self.entry.pk, "rest" if line is None else line),
                merchant_id=self.entry.chain_id,
                currency=self.books.currency,
                amount_minor=amount,
                reason=reason[:300],
                payout_entry=self.entry,
                line=line,
                invoice_ref=ref,
                created_at=self.now,
            )
        )

    def _settled_event(self, allocation: LineAllocation, outstanding: int) -> None:
        books = self.books
        data: dict[str, Any] = {
            "amount": books.amount(allocation.amount_minor),
            "invoice_ref": allocation.invoice_ref,
            "payout_ref": self.entry.external_ref,
            "line": allocation.line,
            "to_late_fees": books.amount(allocation.to_late_fees_minor),
            "to_principal": books.amount(allocation.to_principal_minor),
            "to_merchant": books.amount(allocation.to_merchant_minor),
            "to_suspense": books.amount(allocation.to_suspense_minor),
            "outstanding": books.amount(outstanding),
        }
        if allocation.assignment is not None:
            data["advance_ref"] = allocation.assignment.advance.ref
        ref = chain_ref(self.entry.external_ref, allocation.line)
        books.event("receivable.settled", ref, data)

    # -- dilution --------------------------------------------------------------------------

    def dilution_apply(self, event_type: str, data: dict[str, Any]) -> None:
        for receivable in self.receivables.values():
            if event_type == "invoice.credited":
                wanted = parse_minor_units(data["amount"], self.books.currency)
            else:  # the goods came back or were never sent: nothing of it will be paid
                wanted = receivable.balance.owed_by_debtor
            taken, receivable.balance = dilution_take(receivable.balance, wanted)
            if taken:
                self.books.recourse_raise(taken, credit="advances_receivable")
                receivable.recourse_add(_RECOURSE_REASONS[event_type], taken)
            if receivable.balance.closed:
                self._close(receivable)

    # -- closing ---------------------------------------------------------------------------

    def _late_fees_settle(
        self, receivable: _Receivable, from_reserve: int, to_recourse: int
    ) -> None:
        # Late fees are the merchant's debt: taken from its reserve, beyond it owed as recourse.
        self.books.move(from_reserve, debit="reserve_payable", credit="advances_receivable")
        if to_recourse:
            self.books.recourse_raise(to_recourse, credit="advances_receivable")
            receivable.recourse_add(Recourse.Reason.LATE_FEES, to_recourse)

    def _close(self, receivable: _Receivable) -> None:
        closing = receivable_close(receivable.balance)
        receivable.balance = closing.after
        self._late_fees_settle(
            receivable, closing.late_fees_from_reserve, closing.late_fees_to_recourse
        )
        assignment = receivable.assignment
        netted = self.books.pay_merchant(closing.reserve_released, debit="reserve_payable")
        if closing.reserve_released:
            self.books.event(
                "reserve.released",
                chain_ref(assignment.invoice_ref, assignment.advance.ref, "released"),
                {
                    "amount": self.books.amount(closing.reserve_released),
                    "invoice_ref": assignment.invoice_ref,
                    "recourse_netted": self.books.amount(netted),
                },
            )
        assignment.status = Assignment.Status.SETTLED
        assignment.closed_at = self.now

    # -- writing ---------------------------------------------------------------------------

    def finish(self, *, key: str) -> None:
        for receivable in self.receivables.values():
            self._recourse_record(receivable)
            _balance_store(receivable.assignment, receivable.balance)
        _assignments_store([r.assignment for r in self.receivables.values()], self.now)
        LineAllocation.objects.bulk_create(self.allocations)
        SuspenseItem.objects.bulk_create(self.suspense)
        advances = {r.assignment.advance for r in self.receivables.values()}
        outstanding = [a.pk for a in advances if a.status in Advance.OUTSTANDING]
        tallies = _advance_tallies(outstanding, business_day(self.now))
        for advance in advances:
            self._advance_repaid_if_closed(advance, tallies)
        self.books.write(
            key=key,
            memo=f"{self.entry.type} {self.entry.external_ref} of {self.books.merchant.public_id}",
        )

    def _recourse_record(self, receivable: _Receivable) -> None:
        assignment = receivable.assignment
        for reason, amount in sorted(receivable.recourse.items()):
            Recourse.objects.create(
                merchant_id=assignment.merchant_id,
                assignment=assignment,
                source_entry=self.entry,
                currency=self.books.currency,
                amount_minor=amount,
                reason=reason,
                raised_at=self.now,
            )
            self.books.event(
                "recourse.raised",
                chain_ref(assignment.invoice_ref, assignment.advance.ref, reason, self.entry.seq),
                {
                    "amount": self.books.amount(amount),
                    "invoice_ref": assignment.invoice_ref,
                    "advance_ref": assignment.advance.ref,
                    "reason": Recourse.Reason(reason).label,
                },
            )

    def _advance_repaid_if_closed(self, advance: Advance, tallies: dict[int, _Tally]) -> None:
        if advance.status not in Advance.OUTSTANDING:
            return
        tally = tallies[advance.pk]
        if tally.open_left:
            if advance.status == Advance.Status.OVERDUE and not tally.past_due_left:
                # The receivables past due are paid; the rest is not due yet.
                advance.status = Advance.Status.DISBURSED
                advance.save(update_fields=["status"])
            return
        advance.status = Advance.Status.REPAID
        advance.repaid_at = self.now
        unearned = advance.fee_minor - advance.fee_recognised_minor
        advance.fee_recognised_minor = advance.fee_minor
        advance.save(update_fields=["status", "repaid_at", "fee_recognised_minor"])
        # The credit line revolves: the room this advance took comes back at once.
        facility = advance.facility
        facility.committed_minor = F("committed_minor") - advance.advance_minor
        facility.save(update_fields=["committed_minor"])
        # Repaid early or late, the whole discount fee is earned once the advance is repaid.
        self.books.move(unearned, debit="unearned_discount", credit="fee_income")
        self.books.event(
            "advance.repaid",
            chain_ref(advance.ref, "repaid"),
            {
                "amount": self.books.amount(tally.principal_repaid),
                "advance_ref": advance.ref,
                "payout_ref": self.entry.external_ref,
            },
        )


# One statement for all of a run's receivables: ``bulk_update`` resolves a CASE per column and
# row, which cost more than everything else a payout of a hundred lines does. UPDATE … FROM
# (VALUES …) reads the same on PostgreSQL and on SQLite (3.33+), which both name the columns of
# VALUES column1, column2, …. A receivable settled in this run closed in it, at ``now``: a
# closed_at column in VALUES would be all NULLs at times, which PostgreSQL cannot type.
_ASSIGNMENTS_STORE = """
UPDATE financing_assignment
SET paid_minor = v.column2, diluted_minor = v.column3, late_fee_paid_minor = v.column4,
    principal_repaid_minor = v.column5, reserve_used_minor = v.column6, status = v.column7,
    closed_at = CASE WHEN v.column7 = 'settled' THEN %s ELSE financing_assignment.closed_at END
FROM (VALUES {rows}) AS v
WHERE financing_assignment.id = v.column1
"""


def _assignments_store(assignments: list[Assignment], now: datetime) -> None:
    """Write the settlement fields of ``assignments``, as the run left them, in one statement."""
    if not assignments:
        return
    params: list[Any] = [connection.ops.adapt_datetimefield_value(now)]
    for a in assignments:
        params += [
            a.pk,
            a.paid_minor,
            a.diluted_minor,
            a.late_fee_paid_minor,
            a.principal_repaid_minor,
            a.reserve_used_minor,
            a.status,
        ]
    rows = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(assignments))
    with connection.cursor() as cursor:
        # The statement holds only placeholders; the values travel as parameters.
        cursor.execute(_ASSIGNMENTS_STORE.format(rows=rows), params)


@dataclass(frozen=True)
class _Tally:
    open_left: int  # the advance's assignments not settled yet
    past_due_left: int  # of those, the ones past their due date
    principal_repaid: int


def _advance_tallies(advance_ids: list[int], today: date) -> dict[int, _Tally]:
    """Each advance's assignments still open (and past due), and the principal repaid on them,
    in one query for all the advances a run touched (read after the run stored its
    assignments)."""
    open_ = ~Q(status=Assignment.Status.SETTLED)
    rows = (
        Assignment.objects.filter(advance_id__in=advance_ids)
        .values("advance_id")
        .annotate(
            open_left=Count("pk", filter=open_),
            past_due_left=Count("pk", filter=open_ & Q(due_date__lt=today)),
            principal_repaid=Sum("principal_repaid_minor"),
        )
    )
    return {
        row["advance_id"]: _Tally(row["open_left"], row["past_due_left"], row["principal_repaid"])
        for row in rows
    }


def _balance(assignment: Assignment) -> ReceivableBalance:
    return ReceivableBalance(
        face_minor=assignment.face_minor,
        advance_minor=assignment.advance_minor,
        late_fee_minor=assignment.late_fee_minor,
        paid_minor=assignment.paid_minor,
        diluted_minor=assignment.diluted_minor,
        late_fee_paid_minor=assignment.late_fee_paid_minor,
        principal_repaid_minor=assignment.principal_repaid_minor,
        reserve_used_minor=assignment.reserve_used_minor,
    )


def _balance_store(assignment: Assignment, balance: ReceivableBalance) -> None:
    assignment.paid_minor = balance.paid_minor
    assignment.diluted_minor = balance.diluted_minor
    assignment.late_fee_paid_minor = balance.late_fee_paid_minor
    assignment.principal_repaid_minor = balance.principal_repaid_minor
    assignment.reserve_used_minor = balance.reserve_used_minor
