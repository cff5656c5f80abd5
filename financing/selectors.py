"""Reads for the bank's officers: an advance under review with its evidence, early warnings.

The officers' tenant is the bank, so these read across merchants; nothing here writes. Every
"verified" mark is recomputed from the stored bytes on each read, never taken from a column.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db.models import BinaryField, Func, IntegerField, Q, QuerySet, Value
from django.db.models.expressions import Combinable

from financing.eligibility import Verdict, verdicts
from financing.models import (
    Advance,
    Assignment,
    AssignmentNotice,
    EarlyWarning,
    assignment_entry_ref,
)
from ledger.canonical import GENESIS_PREV, canonical_json
from ledger.entry_checks import entries_verify, entry_row
from ledger.models import Chain, Entry, Invoice, Shipment

ORDER_TYPES = ("order.placed", "order.cancelled")
SHIPMENT_TYPES = ("shipment.dispatched", "shipment.delivered", "shipment.returned")
CREDIT_NOTE = "invoice.credited"
# Entries naming an invoice in their data rather than by their ref.
NAMING_INVOICE = (CREDIT_NOTE, "invoice.linked")
ADVANCE_TYPES = ("advance.disbursed", "advance.overdue", "advance.repaid")


class _BytesPosition(Func):
    """Where ``needle`` starts inside a binary column (1-based), 0 when it does not occur.

    Lets the database pick out the few credit notes naming an invoice instead of shipping
    every credit note's body to Python; the match is then confirmed on the parsed body.
    """

    output_field = IntegerField()

    def __init__(self, haystack: Combinable | str, needle: bytes) -> None:
        super().__init__(haystack, Value(needle, output_field=BinaryField()))

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        haystack, needle = self.get_source_expressions()
        swapped = self.copy()
        swapped.set_source_expressions([needle, haystack])
        return Func.as_sql(
            swapped, compiler, connection, template="position(%(expressions)s)", arg_joiner=" IN "
        )

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, function="instr", **extra)


# Evidence --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceEntry:
    """One entry of a merchant's chain, as read, with the result of checking it just now."""

    seq: int
    type: str
    ref: str
    source: str
    occurred_at: datetime
    hash: str
    problem: str = ""

    @property
    def verified(self) -> bool:
        return not self.problem

    @property
    def short_hash(self) -> str:
        return self.hash[:16]


@dataclass(frozen=True)
class ReceivableTrail:
    """A receivable held by an advance and the chain entries that prove it."""

    assignment: Assignment
    invoice: Invoice | None
    entries: tuple[EvidenceEntry, ...]

    @property
    def verified(self) -> bool:
        return bool(self.entries) and all(entry.verified for entry in self.entries)

    @property
    def order_ref(self) -> str:
        return self.invoice.order_ref if self.invoice is not None else ""


@dataclass(frozen=True)
class AdvanceReview:
    """Everything an officer reads before deciding on an advance."""

    advance: Advance
    trails: tuple[ReceivableTrail, ...]
    advance_entries: tuple[EvidenceEntry, ...]
    verdicts: tuple[Verdict, ...]
    missing_refs: tuple[str, ...]
    notices: tuple[AssignmentNotice, ...]

    @property
    def evidence_verified(self) -> bool:
        return all(trail.verified for trail in self.trails) and all(
            entry.verified for entry in self.advance_entries
        )

    @property
    def eligible(self) -> bool:
        return not self.missing_refs and all(v.eligible for v in self.verdicts)


def advance_review(*, advance: Advance, today: date) -> AdvanceReview:
    """Read an advance for review: evidence trails, checked entries, live verdicts, notices."""
    refs = list(advance.assignments.order_by("id").values_list("invoice_ref", flat=True))
    judged = {v.ref: v for v in verdicts(advance.merchant, today, refs, holder=advance)}
    trails, advance_entries = evidence_trails(advance=advance)
    return AdvanceReview(
        advance=advance,
        trails=trails,
        advance_entries=advance_entries,
        verdicts=tuple(judged[ref] for ref in refs if ref in judged),
        missing_refs=tuple(ref for ref in refs if ref not in judged),
        notices=tuple(
            advance.notices.select_related("marketplace").order_by("marketplace__code", "id")
        ),
    )


def evidence_trails(
    *, advance: Advance
) -> tuple[tuple[ReceivableTrail, ...], tuple[EvidenceEntry, ...]]:
    """The chain entries behind each receivable of ``advance``, and those of the advance itself.

    Per receivable: its order (placed, cancelled), its invoice, every shipment of the order
    (dispatched, delivered, returned), every credit note and link naming the invoice and its
    assignment to the bank. Each entry is verified on the spot (see ``_entries_checked``).
    """
    merchant_id = advance.merchant_id
    assignments = list(advance.assignments.select_related("debtor").order_by("id"))
    invoice_refs = [a.invoice_ref for a in assignments]
    invoices = {
        i.ref: i for i in Invoice.objects.filter(merchant_id=merchant_id, ref__in=invoice_refs)
    }
    order_refs = {i.order_ref for i in invoices.values()}
    shipments: dict[str, set[str]] = defaultdict(set)
    for order_ref, ref in Shipment.objects.filter(
        merchant_id=merchant_id, order_ref__in=order_refs
    ).values_list("order_ref", "ref"):
        shipments[order_ref].add(ref)
    assigned_refs = {
        assignment_entry_ref(invoice_ref=ref, advance_ref=advance.ref): ref for ref in invoice_refs
    }

    wanted = (
        Q(type__in=ORDER_TYPES, external_ref__in=order_refs)
        | Q(type="invoice.issued", external_ref__in=invoice_refs)
        | Q(
            type__in=SHIPMENT_TYPES,
            external_ref__in={ref for refs in shipments.values() for ref in refs},
        )
        | Q(type="receivable.assigned", external_ref__in=list(assigned_refs))
        | Q(type__in=ADVANCE_TYPES, external_ref=advance.ref)
        | Q(type__in=ADVANCE_TYPES, external_ref__startswith=f"{advance.ref}:")
    )
    entries = list(_entries_matching(merchant_id, wanted, invoice_refs))
    checked = {
        entry.seq: entry for entry in _entries_checked(merchant_id=merchant_id, rows=entries)
    }

    def trail_of(assignment: Assignment) -> ReceivableTrail:
        ref = assignment.invoice_ref
        invoice = invoices.get(ref)
        order_ref = invoice.order_ref if invoice is not None else None
        mine = [
            checked[row.seq]
            for row in entries
            if (row.type in ORDER_TYPES and row.external_ref == order_ref)
            or (row.type == "invoice.issued" and row.external_ref == ref)
            or (
                row.type in SHIPMENT_TYPES
                and order_ref is not None
                and row.external_ref in shipments[order_ref]
            )
            or (row.type in NAMING_INVOICE and _credited_invoice(row) == ref)
            or (row.type == "receivable.assigned" and assigned_refs.get(row.external_ref) == ref)
        ]
        return ReceivableTrail(assignment=assignment, invoice=invoice, entries=tuple(mine))

    own = tuple(checked[row.seq] for row in entries if row.type in ADVANCE_TYPES)
    return tuple(trail_of(a) for a in assignments), own


def _entries_matching(
    merchant_id: int,
    wanted: Q,
    invoice_refs: Sequence[str],
    *,
    naming: Sequence[str] = NAMING_INVOICE,
) -> list[Entry]:
    chain = Entry.objects.filter(chain_id=merchant_id)
    found = {entry.seq: entry for entry in chain.filter(wanted)}
    if invoice_refs:
        # A credit note's ref is its own number (a link's is the marketplace's); the invoice is
        # named in its data, which canonical JSON spells exactly one way: "invoice_ref":"<ref>".
        needles = Q()
        notes = chain.filter(type__in=naming)
        for n, ref in enumerate(invoice_refs):
            needle = b'"invoice_ref":' + canonical_json(ref)
            notes = notes.annotate(**{f"names_{n}": _BytesPosition("body", needle)})
            needles |= Q(**{f"names_{n}__gt": 0})
        for entry in notes.filter(needles):
            if _named_invoices(entry) & set(invoice_refs):
                found[entry.seq] = entry
    return [found[seq] for seq in sorted(found)]


def _named_invoices(entry: Entry) -> set[str]:
    """The invoices an entry names in its data: its ``invoice_ref``, or its payout lines'."""
    named = {_credited_invoice(entry)}
    if entry.type == PAYOUT:
        try:
            lines = orjson.loads(bytes(entry.body))["data"]["lines"]
            named |= {line.get("invoice_ref") for line in lines if isinstance(line, dict)}
        except (orjson.JSONDecodeError, KeyError, TypeError):
            pass
    return {ref for ref in named if isinstance(ref, str)}


def _credited_invoice(entry: Entry) -> str | None:
    try:
        envelope = orjson.loads(bytes(entry.body))
        ref = envelope["data"]["invoice_ref"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return ref if isinstance(ref, str) else None


def _entries_checked(*, merchant_id: int, rows: Sequence[Entry]) -> list[EvidenceEntry]:
    """Check each entry of one merchant's chain with the ledger's verifier, between its stored
    neighbours (or the chain head): its own bytes, the entry before naming it, the entry after
    naming it. One sentence per problem; the first problem found is the one shown."""
    if not rows:
        return []
    head = Chain.objects.filter(merchant_id=merchant_id).values_list(
        "merchant__public_id", "head_seq", "head_hash"
    )
    public_id, head_seq, head_hash = head.first() or ("", 0, GENESIS_PREV)
    neighbours = {row.seq + step for row in rows for step in (-1, 1)} - {row.seq for row in rows}
    by_seq = {row.seq: row for row in rows}
    by_seq.update(
        (row.seq, row) for row in Entry.objects.filter(chain_id=merchant_id, seq__in=neighbours)
    )

    def problem(row: Entry) -> str:
        before, after = by_seq.get(row.seq - 1), by_seq.get(row.seq + 1)
        [found] = entries_verify(
            chain=public_id,
            rows=[entry_row(row)],
            predecessor=(before.seq, before.hash) if before is not None else None,
            successor=entry_row(after) if after is not None else None,
            head=(head_seq, head_hash),
        )
        return found

    return [
        EvidenceEntry(
            seq=row.seq,
            type=row.type,
            ref=row.external_ref,
            source=row.source,
            occurred_at=row.occurred_at,
            hash=row.hash,
            problem=problem(row),
        )
        for row in rows
    ]


# What the capital flow writes about one invoice, naming it in its data; and payouts, whose
# lines name it ("lines":[{"amount":…,"invoice_ref":…}] in canonical JSON).
SETTLEMENT_TYPES = ("receivable.settled", "reserve.released", "recourse.raised")
PAYOUT = "payout.settled"


def invoice_evidence(*, merchant_id: int, invoice_ref: str) -> tuple[EvidenceEntry, ...]:
    """Return the chain entries behind one of ``merchant_id``'s invoices, checked, in seq order.

    Its order (placed, cancelled), the invoice, every shipment of the order, credit notes and
    links naming it, its assignments to the bank, the payouts whose lines pay it and the
    settlement that followed (splits, reserve released, recourse raised). Each entry is checked
    with the ledger's verifier against its stored neighbours (``_entries_checked``).
    Empty when the merchant has no such invoice.
    """
    invoice = Invoice.objects.filter(merchant_id=merchant_id, ref=invoice_ref).first()
    if invoice is None:
        return ()
    order_ref = invoice.order_ref
    shipment_refs = (
        list(
            Shipment.objects.filter(merchant_id=merchant_id, order_ref=order_ref).values_list(
                "ref", flat=True
            )
        )
        if order_ref
        else []
    )
    advance_refs = Assignment.objects.filter(
        merchant_id=merchant_id, invoice_ref=invoice_ref
    ).values_list("advance__ref", flat=True)
    wanted = (
        Q(type="invoice.issued", external_ref=invoice_ref)
        | Q(type__in=SHIPMENT_TYPES, external_ref__in=shipment_refs)
        | Q(
            type="receivable.assigned",
            external_ref__in=[
                assignment_entry_ref(invoice_ref=invoice_ref, advance_ref=ref)
                for ref in advance_refs
            ],
        )
    )
    if order_ref:
        wanted |= Q(type__in=ORDER_TYPES, external_ref=order_ref)
    naming = (*NAMING_INVOICE, *SETTLEMENT_TYPES, PAYOUT)
    rows = _entries_matching(merchant_id, wanted, [invoice_ref], naming=naming)
    return tuple(_entries_checked(merchant_id=merchant_id, rows=rows))


def early_warnings_active(*, today: date) -> QuerySet[EarlyWarning]:
    """Return the early warnings still active on ``today``: seen in the last
    ``EARLY_WARNING_ACTIVE_DAYS`` days, newest first.

    A warning stays active a while after its last sighting, so one missed daily run (or a
    condition that clears for a day) does not make a merchant look clean.
    """
    since = today - timedelta(days=settings.EARLY_WARNING_ACTIVE_DAYS - 1)
    return EarlyWarning.objects.filter(observed_on__gte=since, observed_on__lte=today)
