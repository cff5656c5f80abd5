"""The merchant's receivables: a filtered list with verdicts, one's evidence, its receipt.

Every read takes the merchant from the portal's session (``portal.access``); a ref of another
merchant finds nothing here, which the views turn into a 404.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, overload

from django.db.models import Case, OuterRef, Q, QuerySet, Subquery, Value, When

from financing.eligibility import Verdict, open_verdicts, verdicts
from financing.models import Assignment, Receivable
from financing.selectors import EvidenceEntry, invoice_evidence
from ledger.exceptions import EntryNotSequenced, ProofUnavailable
from ledger.log.proofs import inclusion_proof
from ledger.models import Entry, Invoice, LogLeaf
from merchants.models import Merchant


class Status:
    """Where a receivable stands, as the list shows and filters it."""

    OPEN = "open"
    REQUESTED = "requested"
    FINANCED = "financed"
    PAID = "paid"
    CREDITED = "credited"
    ALL = (OPEN, REQUESTED, FINANCED, PAID, CREDITED)


@dataclass(frozen=True)
class ReceivableRow:
    verdict: Verdict
    invoice: Invoice
    status: str

    @property
    def ref(self) -> str:
        return self.verdict.ref

    @property
    def eligible(self) -> bool:
        return self.verdict.eligible


@dataclass(frozen=True)
class ListedReceivable:
    """A receivable as the list orders and filters it, before it is judged to be shown: an open
    one comes with the verdict that judged it eligible or not (``open_verdicts``)."""

    invoice: Invoice
    status: str
    open_verdict: Verdict | None

    @property
    def ref(self) -> str:
        return self.invoice.ref

    @property
    def eligible(self) -> bool:
        return self.open_verdict is not None and self.open_verdict.eligible


@dataclass(frozen=True)
class ReceivableFilter:
    status: str = ""
    eligible: bool | None = None
    due_from: date | None = None
    due_to: date | None = None


def receivables_for_merchant(
    *, merchant: Merchant, today: date, filters: ReceivableFilter
) -> ListedReceivables:
    """Return the merchant's receivables, latest due first, filtered, each knowing whether it can
    be financed today; ``receivables_judged`` gives the verdicts of those shown.

    Only the open ones are judged here (``open_verdicts``): every other one cannot be financed
    on its invoice's own columns, so a merchant's history of paid invoices costs no evidence.
    The database filters, counts and pages the rest, so a page reads its own rows alone.
    """
    judged = {verdict.ref: verdict for verdict in open_verdicts(merchant, today)}
    fundable = [ref for ref, verdict in judged.items() if verdict.eligible]
    invoices = _invoices_listed(merchant)
    if filters.status:
        invoices = invoices.filter(Q(listed_status=filters.status))  # annotated
    if filters.eligible is not None:
        chosen = Q(ref__in=fundable)
        invoices = invoices.filter(chosen if filters.eligible else ~chosen)
    if filters.due_from is not None:
        invoices = invoices.filter(due_date__gte=filters.due_from)
    if filters.due_to is not None:
        invoices = invoices.filter(due_date__lte=filters.due_to)
    return ListedReceivables(invoices, judged)


class ListedReceivables:
    """The filtered list, counted and cut into pages by the database (a ``Paginator`` takes it):
    only the rows of a page are read."""

    def __init__(self, invoices: QuerySet[Invoice], judged: dict[str, Verdict]) -> None:
        self._invoices, self._judged = invoices, judged

    def count(self) -> int:
        return self._invoices.count()

    def __len__(self) -> int:
        return self.count()

    @overload
    def __getitem__(self, index: int) -> ListedReceivable: ...
    @overload
    def __getitem__(self, index: slice) -> list[ListedReceivable]: ...
    def __getitem__(self, index: int | slice) -> ListedReceivable | list[ListedReceivable]:
        if isinstance(index, slice):
            return [self._listed(invoice) for invoice in self._invoices[index]]
        return self._listed(self._invoices[index])

    def __iter__(self) -> Iterator[ListedReceivable]:
        return (self._listed(invoice) for invoice in self._invoices)

    def _listed(self, invoice: Invoice) -> ListedReceivable:
        return ListedReceivable(
            invoice=invoice,
            status=invoice.listed_status,  # type: ignore[attr-defined]  # _invoices_listed's
            open_verdict=self._judged.get(invoice.ref),
        )


def _invoices_listed(merchant: Merchant) -> QuerySet[Invoice]:
    """The merchant's invoices with their receivable rows, latest due first, each with where it
    stands (``listed_status``): one without a receivable row is mid-rebuild, and the verdicts
    leave it out too. Latest first, so the first page holds what is still open, not a history
    that grows with the years (the (merchant, due date, ref) index, read backwards).

    A receivable's latest assignment that was not released decides whether it is requested,
    financed or paid; the (merchant, invoice ref) index finds it.
    """
    latest = (
        Assignment.objects.filter(merchant=OuterRef("merchant"), invoice_ref=OuterRef("ref"))
        .exclude(status=Assignment.Status.RELEASED)
        .order_by("-id")
        .values("status")[:1]
    )
    receivables = Receivable.objects.filter(merchant=merchant).values("ref")
    return (
        Invoice.objects.filter(merchant=merchant, ref__in=receivables)
        # alias, not annotate: a column of its own would be looked up for every invoice
        # before the sort, not for the page's rows after it.
        .alias(assignment_status=Subquery(latest))
        .annotate(
            listed_status=Case(
                When(assignment_status=Assignment.Status.ASSIGNED, then=Value(Status.FINANCED)),
                When(assignment_status=Assignment.Status.HELD, then=Value(Status.REQUESTED)),
                When(status=Invoice.Status.CREDITED, then=Value(Status.CREDITED)),
                When(
                    Q(paid_minor__gt=0) | Q(assignment_status=Assignment.Status.SETTLED),
                    then=Value(Status.PAID),
                ),
                default=Value(Status.OPEN),
            )
        )
        .order_by("-due_date", "-ref")
    )


def receivables_judged(
    *, merchant: Merchant, today: date, listed: Sequence[ListedReceivable]
) -> list[ReceivableRow]:
    """The verdicts of ``listed`` (a page of the list), for what stands in their way: the open
    ones judged already, the others now (a verdict does not depend on which invoices are
    judged with it)."""
    unjudged = [row.ref for row in listed if row.open_verdict is None]
    judged = {v.ref: v for v in verdicts(merchant, today, unjudged)} if unjudged else {}
    judged |= {row.ref: row.open_verdict for row in listed if row.open_verdict is not None}
    return [
        ReceivableRow(verdict=judged[row.ref], invoice=row.invoice, status=row.status)
        for row in listed
        if row.ref in judged
    ]


@dataclass(frozen=True)
class ReceivableDetail:
    row: ReceivableRow
    evidence: tuple[EvidenceEntry, ...]

    @property
    def verified(self) -> bool:
        return bool(self.evidence) and all(entry.verified for entry in self.evidence)


def receivable_detail(*, merchant: Merchant, ref: str, today: date) -> ReceivableDetail | None:
    """Return one receivable of the merchant with its checked evidence, or None if not theirs."""
    judged = verdicts(merchant, today, [ref])
    invoice = _invoices_listed(merchant).filter(ref=ref).first()
    if not judged or invoice is None:
        return None
    row = ReceivableRow(verdict=judged[0], invoice=invoice, status=invoice.listed_status)  # type: ignore[attr-defined]
    return ReceivableDetail(
        row=row, evidence=invoice_evidence(merchant_id=merchant.pk, invoice_ref=ref)
    )


def receivable_receipt(
    *, merchant: Merchant, detail: ReceivableDetail, now: datetime
) -> dict[str, Any]:
    """Return the receipt of a receivable's evidence: each entry's exact bytes, hash and proof.

    Anyone can check it offline: SHA-256 of ``body`` (UTF-8) is ``hash``; each ``prev`` inside
    the body is the hash of the entry before it in the merchant's chain; and an entry with a
    ``log`` member is in the bank's global log: ``proof`` (base64 node hashes) leads from
    SHA-256(0x00 || hash) at ``log_index`` to the root in ``checkpoint``, signed by the bank.
    """
    seqs = [entry.seq for entry in detail.evidence]
    rows = {row.seq: row for row in Entry.objects.filter(chain_id=merchant.pk, seq__in=seqs)}
    sequenced = set(
        LogLeaf.objects.filter(entry__in=list(rows.values())).values_list("entry_id", flat=True)
    )
    entries = []
    for checked in detail.evidence:
        row = rows[checked.seq]
        item: dict[str, Any] = {
            "seq": row.seq,
            "type": row.type,
            "ref": row.external_ref,
            "hash": row.hash,
            "prev_hash": row.prev_hash,
            "verified": checked.verified,
            "body": bytes(row.body).decode(),
        }
        if row.pk in sequenced:
            item["log"] = _inclusion(row)
        entries.append(item)
    return {
        "receipt": "chainfin.receivable-evidence/1",
        "merchant": merchant.public_id,
        "invoice_ref": detail.row.ref,
        "generated_at": now.isoformat(),
        "verified": detail.verified,
        "entries": entries,
    }


def _inclusion(row: Entry) -> dict[str, Any]:
    try:
        proof = inclusion_proof(entry=row)
    except (EntryNotSequenced, ProofUnavailable):
        # Sequenced but past the latest checkpoint: the proof exists a second later.
        leaf = LogLeaf.objects.filter(entry=row).values_list("log_index", flat=True).first()
        return {"log_index": leaf, "proof": None, "checkpoint": None}
    return {
        "log_index": proof.log_index,
        "tree_size": proof.tree_size,
        "proof": [base64.b64encode(node).decode() for node in proof.proof],
        "checkpoint": proof.checkpoint,
    }


def receivable_filter_from(query: Any) -> ReceivableFilter:
    """Read the list's filters from a query string; anything malformed is ignored."""
    status = query.get("status", "")
    eligible = {"yes": True, "no": False}.get(query.get("eligible", ""))
    return ReceivableFilter(
        status=status if status in Status.ALL else "",
        eligible=eligible,
        due_from=_date(query.get("due_from", "")),
        due_to=_date(query.get("due_to", "")),
    )


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None
