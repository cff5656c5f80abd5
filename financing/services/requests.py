"""Quotes and requests: what an advance would cost, and a merchant's request that holds its
receivables and the facility's room until officers decide."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F

from financing import locks
from financing.business_day import business_day, business_day_end
from financing.debtor_exposure import bank_debtor_room, debtor_cap, debtor_exposure
from financing.eligibility import Verdict, invoices_of_refs_later, verdicts_of
from financing.exceptions import AdvanceRefused, QuoteChanged, RequestKeyReused
from financing.models import Advance, Assignment, Facility, Receivable
from financing.pricing import DayCount, Quote, apr_equivalent_mean, mean_tenor, quote_price
from financing.risk import risk_assess
from financing.services._shared import constraint_name
from ledger.canonical import canonical_json
from ledger.models import Invoice
from ledger.money import Money
from merchants.identifiers import party_name_normalise, tax_id_normalise
from merchants.models import Debtor, Marketplace, Merchant

MAX_RECEIVABLES_PER_ADVANCE = 100


@dataclass(frozen=True)
class PricedReceivable:
    verdict: Verdict
    quote: Quote


@dataclass(frozen=True)
class AdvanceQuote:
    """What an advance against ``items`` would cost if paid out on ``priced_on``, priced item by
    item from that business day to each due date; it holds until that day ends."""

    facility: Facility
    items: tuple[PricedReceivable, ...]
    priced_on: date

    @property
    def currency(self) -> str:
        return self.facility.currency

    def total(self, name: str) -> int:
        return sum(getattr(item.quote, name) for item in self.items)

    @property
    def due_date(self) -> date:
        return max(item.verdict.due_date for item in self.items)

    @property
    def days(self) -> int:
        return max(item.quote.days for item in self.items)

    @property
    def tenors(self) -> list[tuple[int, int]]:
        return [(i.quote.advance_minor, i.quote.days) for i in self.items]

    @property
    def mean_days(self) -> Decimal:
        return mean_tenor(self.tenors)

    @property
    def apr(self) -> Decimal:
        # Over the advance-weighted mean tenor: an APR over the longest item would flatter it.
        return apr_equivalent_mean(self.total("fee_minor"), self.total("net_minor"), self.tenors)

    @property
    def expires_at(self) -> datetime:
        return business_day_end(self.priced_on)

    @property
    def terms_hash(self) -> str:
        """SHA-256 of the price, which a merchant accepts by naming it: the same receivables at
        the same amounts, rates and fee days from the same business day give the same hash."""
        facility = self.facility
        price = {
            "currency": self.currency,
            "priced_on": self.priced_on.isoformat(),
            "rates": [facility.advance_rate_bp, facility.annual_rate_bp, facility.day_count],
            "items": [
                [
                    i.verdict.ref,
                    i.quote.face_minor,
                    i.quote.advance_minor,
                    i.quote.fee_minor,
                    i.verdict.due_date.isoformat(),
                    i.quote.days,
                ]
                for i in self.items
            ],
            "apr": str(self.apr),
        }
        return hashlib.sha256(canonical_json(price)).hexdigest()


def advance_quote(*, merchant: Merchant, refs: Sequence[str], today: date) -> AdvanceQuote:
    """Price an advance paid out on business day ``today``; nothing is held or written.

    Fee days run from ``today`` (the expected disbursement day) to each due date; the quote
    expires when ``today`` ends (``financing.business_day``).

    :raises AdvanceRefused: a ref is unknown or not fundable (every reason, per ref), or the
        refs mix currencies.
    """
    return _quote(merchant, refs, today, holder=None)


def advance_requote(
    *, advance: Advance, today: date, invoices: list[Invoice] | None = None
) -> AdvanceQuote:
    """Price ``advance``'s receivables again as of ``today``, its own holds counted as its own.

    ``invoices``: their invoices, if the caller read them (``invoices_of_refs_later``, a
    decision with its locks); else read here.

    :raises AdvanceRefused: the evidence or the facility changed since the request (the reasons
        say how, per ref).
    """
    refs = [assignment.invoice_ref for assignment in advance.assignments_by_id()]
    return _quote(advance.merchant, refs, today, holder=advance, invoices=invoices)


def _quote(
    merchant: Merchant,
    refs: Sequence[str],
    today: date,
    holder: Advance | None,
    invoices: list[Invoice] | None = None,
) -> AdvanceQuote:
    _refs_check(refs)
    if invoices is None:
        invoices = invoices_of_refs_later(merchant, refs)()
    judged = {v.ref: v for v in verdicts_of(merchant, today, invoices, holder=holder)}
    unknown = [ref for ref in refs if ref not in judged]
    if unknown:
        raise AdvanceRefused(
            "Unknown invoices.",
            {ref: [("UNKNOWN_INVOICE", "No such invoice for this merchant.")] for ref in unknown},
        )
    currencies = {v.currency for v in judged.values()}
    if len(currencies) > 1:
        listed = ", ".join(sorted(currencies))
        raise AdvanceRefused(f"One advance is in one currency; these are in {listed}.", {})
    refused = {
        ref: [(r.code.value, r.message) for r in v.reasons]
        for ref, v in judged.items()
        if v.reasons
    }
    if refused:
        raise AdvanceRefused("Some invoices cannot be financed now.", refused)
    facility = _active_facility(merchant, currencies.pop(), holder)
    items = tuple(
        PricedReceivable(
            verdict=judged[ref],
            quote=quote_price(
                face_minor=judged[ref].face_minor,
                currency=facility.currency,
                advance_rate_bp=facility.advance_rate_bp,
                annual_rate_bp=facility.annual_rate_bp,
                day_count=DayCount(facility.day_count),
                days=(judged[ref].due_date - today).days,
            ),
        )
        for ref in refs
    )
    quote = AdvanceQuote(facility=facility, items=items, priced_on=today)
    _limits_check(quote, holder)
    return quote


def _active_facility(merchant: Merchant, currency: str, holder: Advance | None) -> Facility:
    """The merchant's active facility in ``currency``.

    A holder's own facility, read under its lock in this transaction (``financing.locks``),
    is that facility when it is the active one in the currency: one per merchant and currency.
    """
    if holder is not None:
        own = holder.facility
        if own.active and (own.merchant_id, own.currency) == (merchant.pk, currency):
            return own
    return Facility.objects.get(merchant=merchant, currency=currency, active=True)


def _refs_check(refs: Sequence[str]) -> None:
    if not refs:
        raise AdvanceRefused("Name at least one invoice.", {})
    if len(refs) > MAX_RECEIVABLES_PER_ADVANCE:
        raise AdvanceRefused(
            f"At most {MAX_RECEIVABLES_PER_ADVANCE} invoices go into one advance.", {}
        )
    if len(set(refs)) != len(refs):
        raise AdvanceRefused("Each invoice may be named once.", {})


def _limits_check(quote: AdvanceQuote, holder: Advance | None) -> None:
    """The items fit one by one (the verdicts said so); check that they fit together."""
    facility, currency = quote.facility, quote.currency
    own = holder.advance_minor if holder is not None else 0
    room = facility.limit_minor - facility.committed_minor + own
    if quote.total("advance_minor") > room:
        raise AdvanceRefused(
            f"Together these would advance {Money(quote.total('advance_minor'), currency)}; "
            f"the facility has {Money(room, currency)} left.",
            {i.verdict.ref: [("FACILITY_LIMIT", "The facility has no room.")] for i in quote.items},
        )
    by_debtor: dict[str, list[PricedReceivable]] = defaultdict(list)
    for item in quote.items:
        by_debtor[item.verdict.debtor_key].append(item)
    shared = {key: items for key, items in by_debtor.items() if len(items) > 1}
    if not shared:  # each debtor has one item, which its verdict already measured
        return
    bank_room = bank_debtor_room([(currency, key) for key in shared], excluding=holder)
    for (_, key), room in bank_room.items():
        items = shared[key]
        if sum(i.quote.advance_minor for i in items) > room:
            raise AdvanceRefused(
                f"Together these would put more on {items[0].verdict.debtor_name} than the "
                f"bank's limit leaves ({Money(max(room, 0), currency)} left).",
                {
                    i.verdict.ref: [("BANK_DEBTOR_LIMIT", "Over the bank's debtor limit together.")]
                    for i in items
                },
            )
    exposure = debtor_exposure(facility.merchant, excluding=holder)
    for key, items in shared.items():
        debtor_room = debtor_cap(facility) - exposure.get((currency, key), 0)
        if sum(i.quote.advance_minor for i in items) > debtor_room:
            raise AdvanceRefused(
                f"Together these would put more on {items[0].verdict.debtor_name} than one "
                f"debtor may carry ({Money(max(debtor_room, 0), currency)} left).",
                {
                    i.verdict.ref: [("DEBTOR_LIMIT", "Over the debtor's cap together.")]
                    for i in items
                },
            )


def advance_request(
    *,
    merchant: Merchant,
    refs: Sequence[str],
    request_key: str,
    now: datetime,
    terms_hash: str = "",
) -> Advance:
    """Request an advance at today's quote, which the merchant accepts by requesting it; hold
    its receivables and the facility's room for review.

    With ``terms_hash`` (from ``advance_quote``) the merchant accepts that price only. Idempotent
    on ``(merchant, request_key)``: a repeat returns the original advance.

    :raises AdvanceRefused: as ``advance_quote``, or another request took a receivable or the
        facility's room first.
    :raises QuoteChanged: ``terms_hash`` is not today's price for these invoices.
    :raises RequestKeyReused: the key was used for other invoices.
    """
    existing = _request_replayed(merchant, refs, request_key)
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return _request(merchant, refs, request_key, now, terms_hash)
    except IntegrityError as exc:
        replayed = _request_replayed(merchant, refs, request_key)
        if replayed is not None:  # the same request raced itself
            return replayed
        raise _race_refusal(exc) from None


def _request_replayed(merchant: Merchant, refs: Sequence[str], key: str) -> Advance | None:
    advance = Advance.objects.filter(merchant=merchant, request_key=key).first()
    if advance is None:
        return None
    held = list(advance.assignments.order_by("id").values_list("invoice_ref", flat=True))
    if held != list(refs):
        raise RequestKeyReused("This idempotency key was used for another advance request.")
    return advance


def _request(
    merchant: Merchant, refs: Sequence[str], key: str, now: datetime, terms_hash: str
) -> Advance:
    today = business_day(now)
    currency = (
        Invoice.objects.filter(merchant=merchant, ref__in=list(refs))
        .values_list("currency", flat=True)
        .first()
    )
    # Lock the facility first: requests against one credit line then see each other's holds
    # and commitments. The unique indexes and the limit's CHECK still decide if this is skipped.
    locks.facility_lock(merchant=merchant, currency=currency)
    replayed = _request_replayed(merchant, refs, key)  # a twin of this request got the lock first
    if replayed is not None:
        return replayed
    quote = _quote(merchant, refs, today, holder=None)
    if terms_hash and terms_hash != quote.terms_hash:
        raise QuoteChanged(
            f"The price changed since that quote; today's quote is {quote.terms_hash}.",
            terms_hash=quote.terms_hash,
        )
    risk = risk_assess(merchant, today)
    advance = Advance.objects.create(
        merchant=merchant,
        facility=quote.facility,
        currency=quote.currency,
        face_minor=quote.total("face_minor"),
        advance_minor=quote.total("advance_minor"),
        fee_minor=quote.total("fee_minor"),
        reserve_minor=quote.total("reserve_minor"),
        days=quote.days,
        due_date=quote.due_date,
        apr=quote.apr,
        mean_days=quote.mean_days,
        price_hash=quote.terms_hash,
        accepted_hash=quote.terms_hash,
        priced_on=quote.priced_on,
        quote_expires_at=quote.expires_at,
        risk_score=risk.score,
        risk_factors=[factor.as_json() for factor in risk.factors],
        requested_at=now,
        request_key=key,
    )
    receivables = {
        r.ref: r for r in Receivable.objects.filter(merchant=merchant, ref__in=list(refs))
    }
    invoices = {i.ref: i for i in Invoice.objects.filter(merchant=merchant, ref__in=list(refs))}
    Assignment.objects.bulk_create(
        Assignment(
            advance=advance,
            merchant=merchant,
            invoice_ref=item.verdict.ref,
            fingerprint=item.verdict.fingerprint,
            debtor=_debtor_resolve(invoices[item.verdict.ref], receivables[item.verdict.ref]),
            debtor_key=item.verdict.debtor_key,
            face_minor=item.quote.face_minor,
            advance_minor=item.quote.advance_minor,
            due_date=item.verdict.due_date,
        )
        for item in quote.items
    )
    Facility.objects.filter(pk=quote.facility.pk).update(
        committed_minor=F("committed_minor") + advance.advance_minor
    )
    return advance


def _race_refusal(exc: IntegrityError) -> AdvanceRefused:
    constraint = constraint_name(exc)
    if "assignment_one_live" in constraint:
        return AdvanceRefused("Another advance took one of these invoices first.", {})
    if "facility_commitments_within_limit" in constraint:
        return AdvanceRefused("Another advance took the facility's remaining room first.", {})
    raise exc


def _debtor_resolve(invoice: Invoice, receivable: Receivable) -> Debtor:
    if invoice.debtor_kind == Debtor.Kind.MARKETPLACE:
        marketplace = Marketplace.objects.get(code=receivable.source)
        debtor, _ = Debtor.objects.get_or_create(
            kind=Debtor.Kind.MARKETPLACE,
            marketplace=marketplace,
            defaults={"name": marketplace.name},
        )
        return debtor
    # One row per buyer: its tax id, or else its folded name, with its country (the unique
    # indexes on Debtor hold that under concurrency; get_or_create re-reads the winner's row).
    tax_id = tax_id_normalise(invoice.debtor_tax_id)
    name_key = party_name_normalise(invoice.debtor_name)
    identity = {"tax_id": tax_id} if tax_id else {"tax_id": "", "name_key": name_key}
    debtor, _ = Debtor.objects.get_or_create(
        kind=Debtor.Kind.BUSINESS,
        country=invoice.debtor_country,
        **identity,
        defaults={"name": invoice.debtor_name, "name_key": name_key},
    )
    return debtor
