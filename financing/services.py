"""Financing use cases: facilities, advance quotes and requests, maker-checker, disbursement.

Every function is one transaction. Money moves only in ``_disburse`` and ``overdue_sweep``, and
each movement is a balanced journal entry plus an entry on the merchant's chain, in the same
transaction as the business change (DESIGN §4).
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F

from financing import accounts
from financing.books.services import Leg, journal_post
from financing.eligibility import Verdict, debtor_cap, debtor_exposure, verdicts
from financing.exceptions import (
    AdvanceRefused,
    ApprovalVoid,
    FacilityInvalid,
    MakerCheckerViolation,
    NotPermitted,
    RequestKeyReused,
    WrongState,
)
from financing.models import (
    Advance,
    Assignment,
    AssignmentNotice,
    Blacklisting,
    Facility,
    FacilityChange,
    Receivable,
)
from financing.notices import notice_payload, notices_deliver_later
from financing.pricing import DayCount, Quote, apr_equivalent, late_fee, quote_price
from financing.risk import risk_assess
from ledger.canonical import canonical_json
from ledger.events import system_event
from ledger.models import Invoice
from ledger.money import format_minor_units
from ledger.services import NewEntry, entries_append
from merchants.identifiers import tax_id_normalise
from merchants.models import Debtor, Marketplace, Merchant

logger = logging.getLogger(__name__)
MAX_RECEIVABLES_PER_ADVANCE = 100
FACILITY_TERMS = (
    "limit_minor",
    "advance_rate_bp",
    "annual_rate_bp",
    "day_count",
    "max_tenor_days",
    "min_days_to_due",
    "debtor_cap_bp",
    "late_fee_rate_bp",
    "blacklist_after_days",
    "checker_threshold_minor",
    "active",
)


# Facilities ------------------------------------------------------------------------------------


def facility_open(
    *,
    merchant: Merchant,
    currency: str,
    officer: User,
    reason: str,
    now: datetime,
    terms: Mapping[str, Any],
) -> Facility:
    """Open a credit line; the opening is the first entry of its audit trail."""
    _require(officer, "financing.add_facility")
    if not reason.strip():
        raise FacilityInvalid("Say why the facility is opened.")
    _terms_check(terms)
    try:
        with transaction.atomic():
            facility = Facility.objects.create(merchant=merchant, currency=currency, **terms)
            FacilityChange.objects.create(
                facility=facility,
                officer=officer,
                changed_at=now,
                before={},
                after=_terms_of(facility),
                reason=reason,
            )
    except IntegrityError as exc:
        raise FacilityInvalid(f"The terms break a rule: {_constraint(exc)}.") from None
    return facility


def facility_change(
    *,
    facility: Facility,
    officer: User,
    reason: str,
    now: datetime,
    changes: Mapping[str, Any],
) -> Facility:
    """Change a facility's terms, audit it, and void approvals that relied on the old terms."""
    _require(officer, "financing.change_facility")
    if not reason.strip():
        raise FacilityInvalid("Say why the facility changes.")
    _terms_check(changes)
    try:
        with transaction.atomic():
            locked = Facility.objects.select_for_update().get(pk=facility.pk)
            before = _terms_of(locked)
            for name, value in changes.items():
                setattr(locked, name, value)
            locked.version += 1
            locked.save()
            FacilityChange.objects.create(
                facility=locked,
                officer=officer,
                changed_at=now,
                before=before,
                after=_terms_of(locked),
                reason=reason,
            )
            for advance in locked.advances.filter(status=Advance.Status.APPROVED):
                _approval_void(advance, f"Facility terms changed ({reason}).")
    except IntegrityError as exc:
        raise FacilityInvalid(f"The terms break a rule: {_constraint(exc)}.") from None
    return locked


def _terms_check(terms: Mapping[str, Any]) -> None:
    unknown = set(terms) - set(FACILITY_TERMS)
    if unknown:
        raise FacilityInvalid(f"Unknown facility terms: {', '.join(sorted(unknown))}.")
    if "day_count" in terms and terms["day_count"] not in DayCount.values:
        raise FacilityInvalid(f"Day count must be one of {', '.join(DayCount.values)}.")


def _terms_of(facility: Facility) -> dict[str, Any]:
    return {name: getattr(facility, name) for name in FACILITY_TERMS}


def _constraint(exc: IntegrityError) -> str:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) or str(exc).splitlines()[0]


# Quotes and requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PricedReceivable:
    verdict: Verdict
    quote: Quote


@dataclass(frozen=True)
class AdvanceQuote:
    """What an advance against ``items`` would cost, priced item by item to each due date."""

    facility: Facility
    items: tuple[PricedReceivable, ...]

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
    def apr(self) -> Decimal:
        # The advance-weighted mean tenor: an APR over the longest item would flatter the price.
        weighted = sum(i.quote.advance_minor * i.quote.days for i in self.items)
        days = max(round(weighted / self.total("advance_minor")), 1)
        return apr_equivalent(self.total("fee_minor"), self.total("net_minor"), days)


def advance_quote(*, merchant: Merchant, refs: Sequence[str], today: date) -> AdvanceQuote:
    """Price an advance against the merchant's invoices ``refs``; nothing is held or written.

    :raises AdvanceRefused: a ref is unknown or not fundable (every reason, per ref), or the
        refs mix currencies.
    """
    return _quote(merchant, refs, today, holder=None)


def _quote(
    merchant: Merchant, refs: Sequence[str], today: date, holder: Advance | None
) -> AdvanceQuote:
    _refs_check(refs)
    judged = {v.ref: v for v in verdicts(merchant, today, refs, holder=holder)}
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
    facility = Facility.objects.get(merchant=merchant, currency=currencies.pop(), active=True)
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
    quote = AdvanceQuote(facility=facility, items=items)
    _limits_check(quote, holder)
    return quote


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
            f"Together these would advance {_money(quote.total('advance_minor'), currency)}; "
            f"the facility has {_money(room, currency)} left.",
            {i.verdict.ref: [("FACILITY_LIMIT", "The facility has no room.")] for i in quote.items},
        )
    by_debtor: dict[str, list[PricedReceivable]] = defaultdict(list)
    for item in quote.items:
        by_debtor[item.verdict.debtor_key].append(item)
    shared = {key: items for key, items in by_debtor.items() if len(items) > 1}
    if not shared:  # each debtor has one item, which its verdict already measured
        return
    exposure = debtor_exposure(facility.merchant, excluding=holder)
    for key, items in shared.items():
        debtor_room = debtor_cap(facility) - exposure.get((currency, key), 0)
        if sum(i.quote.advance_minor for i in items) > debtor_room:
            raise AdvanceRefused(
                f"Together these would put more on {items[0].verdict.debtor_name} than one "
                f"debtor may carry ({_money(max(debtor_room, 0), currency)} left).",
                {
                    i.verdict.ref: [("DEBTOR_LIMIT", "Over the debtor's cap together.")]
                    for i in items
                },
            )


def advance_request(
    *, merchant: Merchant, refs: Sequence[str], request_key: str, now: datetime
) -> Advance:
    """Request an advance: price it, assess the risk, and hold its receivables for review.

    Idempotent on ``(merchant, request_key)``: a repeat returns the original advance.

    :raises AdvanceRefused: as ``advance_quote``, or another request took a receivable or the
        facility's room first.
    :raises RequestKeyReused: the key was used for other invoices.
    """
    existing = _request_replayed(merchant, refs, request_key)
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return _request(merchant, refs, request_key, now)
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


def _request(merchant: Merchant, refs: Sequence[str], key: str, now: datetime) -> Advance:
    today = now.date()
    currency = (
        Invoice.objects.filter(merchant=merchant, ref__in=list(refs))
        .values_list("currency", flat=True)
        .first()
    )
    # Lock the facility first: requests against one credit line then see each other's holds
    # and commitments. The unique indexes and the limit's CHECK still decide if this is skipped.
    facility_lock(merchant, currency)
    replayed = _request_replayed(merchant, refs, key)  # a twin of this request got the lock first
    if replayed is not None:
        return replayed
    quote = _quote(merchant, refs, today, holder=None)
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


def facility_lock(merchant: Merchant, currency: str | None) -> None:
    list(Facility.objects.select_for_update().filter(merchant=merchant, currency=currency))


def _race_refusal(exc: IntegrityError) -> AdvanceRefused:
    constraint = _constraint(exc)
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
    tax_id = tax_id_normalise(invoice.debtor_tax_id)
    identity = {"tax_id": tax_id} if tax_id else {"tax_id": "", "name": invoice.debtor_name}
    debtor, _ = Debtor.objects.get_or_create(
        kind=Debtor.Kind.BUSINESS,
        country=invoice.debtor_country,
        **identity,
        defaults={"name": invoice.debtor_name},
    )
    return debtor


# Maker-checker ---------------------------------------------------------------------------------


def advance_approve(*, advance: Advance, officer: User, now: datetime, note: str = "") -> Advance:
    """The maker's decision. Binds a hash of what was approved; small advances disburse at once.

    :raises NotPermitted: the officer may not approve.
    :raises WrongState: the advance is not awaiting approval.
    :raises AdvanceRefused: the evidence changed since the request (the reasons say how).
    """
    _require(officer, "financing.approve_advance")
    with transaction.atomic():
        locked = _advance_lock(advance, Advance.Status.REQUESTED)
        _reprice(locked, _evidence_recheck(locked, now.date()))
        locked.approved_by = officer
        locked.approved_at = now
        locked.approval_hash = terms_hash(locked)
        locked.decision_note = note
        if locked.advance_minor <= locked.facility.checker_threshold_minor:
            _disburse(locked, now)
        else:
            locked.status = Advance.Status.APPROVED
            locked.save()
    return locked


def advance_authorize(*, advance: Advance, officer: User, now: datetime) -> Advance:
    """The checker's decision: a second officer releases the money.

    :raises MakerCheckerViolation: the approving officer tries to authorize too.
    :raises ApprovalVoid: what was approved changed; the advance is back in the review queue.
    """
    _require(officer, "financing.authorize_advance")
    void_reason = ""
    with transaction.atomic():
        locked = _advance_lock(advance, Advance.Status.APPROVED)
        if locked.approved_by_id == officer.pk:
            raise MakerCheckerViolation("The officer who approved an advance cannot authorize it.")
        try:
            _evidence_recheck(locked, now.date())
            if terms_hash(locked) != locked.approval_hash:
                raise ApprovalVoid("The advance or its terms changed after approval.")
        except (AdvanceRefused, ApprovalVoid) as exc:
            void_reason = _explained(exc)
            _approval_void(locked, void_reason)
        else:
            locked.authorized_by = officer
            _disburse(locked, now)
    if void_reason:  # raised after commit, so the voiding itself is kept
        raise ApprovalVoid(f"Approval void: {void_reason} It needs a fresh approval.")
    return locked


def advance_reject(*, advance: Advance, officer: User, now: datetime, note: str) -> Advance:
    """Turn a request down, with a note the merchant reads; its holds and room are released."""
    _require(officer, "financing.approve_advance")
    if not note.strip():
        raise WrongState("Say why the advance is rejected; the merchant will read it.")
    with transaction.atomic():
        locked = _advance_lock(advance, *Advance.OPEN)
        locked.status = Advance.Status.REJECTED
        locked.decided_at = now
        locked.decision_note = note
        locked.save()
        _holds_release(locked)
    return locked


def _explained(exc: AdvanceRefused | ApprovalVoid) -> str:
    if isinstance(exc, ApprovalVoid) or not exc.reasons:
        return exc.message
    per_ref = "; ".join(
        f"{ref}: {', '.join(code for code, _ in pairs)}" for ref, pairs in exc.reasons.items()
    )
    return f"{exc.message} ({per_ref})"


def _require(officer: User, permission: str) -> None:
    if not (officer.is_active and getattr(officer, "is_staff", False)):
        raise NotPermitted("Only active staff act on financing.")
    if not officer.has_perm(permission):
        raise NotPermitted(f"Missing permission {permission}.")


def _advance_lock(advance: Advance, *statuses: str) -> Advance:
    locked = Advance.objects.select_for_update().select_related("facility").get(pk=advance.pk)
    if locked.status not in statuses:
        raise WrongState(f"Advance {locked.ref} is {locked.get_status_display().lower()}.")
    return locked


def _evidence_recheck(advance: Advance, today: date) -> AdvanceQuote:
    refs = list(advance.assignments.order_by("id").values_list("invoice_ref", flat=True))
    return _quote(advance.merchant, refs, today, holder=advance)


def _reprice(advance: Advance, quote: AdvanceQuote) -> None:
    """Approval prices the advance as of today, under the facility's terms as they stand now.

    The approval hash then binds this price: from here on, any change voids the approval.
    """
    delta = quote.total("advance_minor") - advance.advance_minor
    if delta:  # a changed advance rate; the facility's CHECK still caps the commitment
        Facility.objects.filter(pk=advance.facility_id).update(
            committed_minor=F("committed_minor") + delta
        )
    advance.face_minor = quote.total("face_minor")
    advance.advance_minor = quote.total("advance_minor")
    advance.fee_minor = quote.total("fee_minor")
    advance.reserve_minor = quote.total("reserve_minor")
    advance.days, advance.due_date, advance.apr = quote.days, quote.due_date, quote.apr
    for item in quote.items:
        advance.assignments.filter(invoice_ref=item.verdict.ref).update(
            face_minor=item.quote.face_minor, advance_minor=item.quote.advance_minor
        )


def terms_hash(advance: Advance) -> str:
    """SHA-256 of everything an approval binds: the advance's terms, its facility's terms (by
    version) and each receivable's evidence as it stands. Any change gives another hash."""
    items = advance.assignments.order_by("id").values_list(
        "invoice_ref", "fingerprint", "face_minor", "advance_minor", "due_date"
    )
    faces = dict(
        Invoice.objects.filter(merchant_id=advance.merchant_id, ref__in=[i[0] for i in items])
        .annotate(face=F("amount_minor") - F("credited_minor"))
        .values_list("ref", "face")
    )
    terms = {
        "advance": advance.ref,
        "merchant": advance.merchant_id,
        "facility": [advance.facility_id, advance.facility.version],
        "currency": advance.currency,
        "amounts": [
            advance.face_minor,
            advance.advance_minor,
            advance.fee_minor,
            advance.reserve_minor,
        ],
        "days": advance.days,
        "due_date": advance.due_date.isoformat(),
        "apr": str(advance.apr),
        "items": [
            [ref, fp, face, adv, due.isoformat(), faces.get(ref)]
            for ref, fp, face, adv, due in items
        ],
    }
    return hashlib.sha256(canonical_json(terms)).hexdigest()


def _approval_void(advance: Advance, why: str) -> None:
    advance.status = Advance.Status.REQUESTED
    advance.approved_by = None
    advance.approved_at = None
    advance.approval_hash = ""
    advance.decision_note = f"Approval void: {why}"
    advance.save()


def _holds_release(advance: Advance) -> None:
    advance.assignments.filter(status=Assignment.Status.HELD).update(
        status=Assignment.Status.RELEASED
    )
    Facility.objects.filter(pk=advance.facility_id).update(
        committed_minor=F("committed_minor") - advance.advance_minor
    )


# Disbursement ----------------------------------------------------------------------------------


def _disburse(advance: Advance, now: datetime) -> None:
    """Pay out: assign the receivables, post the journal, extend the chain, notify marketplaces."""
    advance.status = Advance.Status.DISBURSED
    advance.disbursed_at = now
    advance.decided_at = now
    advance.save()
    assigned = advance.assignments.filter(status=Assignment.Status.HELD).update(
        status=Assignment.Status.ASSIGNED
    )
    if assigned != advance.assignments.count():
        raise WrongState(f"Advance {advance.ref} lost a receivable before disbursement.")
    book = accounts.Chart(advance.merchant, advance.currency)
    journal_post(
        key=f"disburse:{advance.ref}",
        memo=f"Advance {advance.ref} disbursed to {advance.merchant.legal_name}",
        legs=_nonzero(
            Leg(book.advances_receivable(), advance.face_minor),
            Leg(book.bank_funding(), -(advance.advance_minor - advance.fee_minor)),
            Leg(book.fee_income(), -advance.fee_minor),
            Leg(book.reserve_payable(), -advance.reserve_minor),
        ),
        now=now,
    )
    _chain_disbursement(advance, now)
    _notices_create(advance, now)


def _nonzero(*legs: Leg) -> list[Leg]:
    return [leg for leg in legs if leg.amount_minor]


def _chain_disbursement(advance: Advance, now: datetime) -> None:
    assignments = list(advance.assignments.order_by("id"))
    money = {"currency": advance.currency}
    disbursed = system_event(
        "advance.disbursed",
        advance.ref,
        now,
        {
            **money,
            "amount": format_minor_units(advance.advance_minor, advance.currency),
            "advance_ref": advance.ref,
            "fee": format_minor_units(advance.fee_minor, advance.currency),
            "reserve": format_minor_units(advance.reserve_minor, advance.currency),
            "due_date": advance.due_date.isoformat(),
            "invoice_refs": [a.invoice_ref for a in assignments],
        },
    )
    assigned = [
        system_event(
            "receivable.assigned",
            f"{a.invoice_ref}@{advance.ref}",
            now,
            {
                **money,
                "amount": format_minor_units(a.face_minor, advance.currency),
                "invoice_ref": a.invoice_ref,
                "advance_ref": advance.ref,
                "assignee": accounts.ASSIGNEE_NAME,
            },
        )
        for a in assignments
    ]
    entries_append(
        source=settings.LEDGER_SYSTEM_SOURCE,
        entries=[
            NewEntry(merchant_id=advance.merchant_id, event=e) for e in (disbursed, *assigned)
        ],
        now=now,
    )


def _notices_create(advance: Advance, now: datetime) -> None:
    sources = Receivable.objects.filter(
        merchant_id=advance.merchant_id,
        ref__in=advance.assignments.values_list("invoice_ref", flat=True),
    ).values_list("source", flat=True)
    for marketplace in Marketplace.objects.filter(code__in=set(sources)):
        notice = AssignmentNotice.objects.create(
            advance=advance,
            marketplace=marketplace,
            payload=notice_payload(advance, marketplace),
            created_at=now,
        )
        notices_deliver_later(notice)


# Overdue ---------------------------------------------------------------------------------------


def overdue_sweep(*, now: datetime) -> int:
    """Mark advances past due, accrue late fees up to today, blacklist the long overdue.

    Idempotent per day: each advance accrues at most once a day (journal key and chain ref carry
    the date), so a retried or doubled run changes nothing. Returns how many advances it touched.
    """
    today = now.date()
    due = Advance.objects.filter(status__in=Advance.OUTSTANDING, due_date__lt=today)
    touched = 0
    for advance_id in due.values_list("id", flat=True).order_by("id"):
        try:
            with transaction.atomic():
                locked = Advance.objects.select_for_update().select_related("facility", "merchant")
                if _overdue_accrue(locked.get(pk=advance_id), today, now):
                    touched += 1
        except Exception:  # one advance's failure must not stop the others' accrual
            logger.exception("Overdue accrual failed for advance id %s", advance_id)
    return touched


def _overdue_accrue(advance: Advance, today: date, now: datetime) -> bool:
    since = advance.late_fee_accrued_to or advance.due_date
    if advance.status not in Advance.OUTSTANDING or since >= today:
        return False
    facility = advance.facility
    fee = late_fee(
        advance.advance_minor,
        facility.late_fee_rate_bp,
        (today - since).days,
        DayCount(facility.day_count),
    )
    if fee:
        book = accounts.Chart(advance.merchant, advance.currency)
        journal_post(
            key=f"late:{advance.ref}:{today.isoformat()}",
            memo=f"Late fee on {advance.ref}, {since} to {today}",
            legs=[Leg(book.advances_receivable(), fee), Leg(book.late_fee_income(), -fee)],
            now=now,
        )
    days_past_due = (today - advance.due_date).days
    event = system_event(
        "advance.overdue",
        f"{advance.ref}:overdue:{today.isoformat()}",
        now,
        {
            "currency": advance.currency,
            "amount": format_minor_units(fee, advance.currency),
            "advance_ref": advance.ref,
            "days_past_due": days_past_due,
        },
    )
    entries_append(
        source=settings.LEDGER_SYSTEM_SOURCE,
        entries=[NewEntry(merchant_id=advance.merchant_id, event=event)],
        now=now,
    )
    advance.status = Advance.Status.OVERDUE
    advance.late_fee_minor += fee
    advance.late_fee_accrued_to = today
    advance.save(update_fields=["status", "late_fee_minor", "late_fee_accrued_to"])
    if days_past_due >= facility.blacklist_after_days:
        _blacklist_for_overdue(advance, days_past_due, now)
    return True


def _blacklist_for_overdue(advance: Advance, days: int, now: datetime) -> None:
    # Once per advance: an officer who lifted it, with a reason, is not overruled the next day.
    already = Blacklisting.objects.filter(merchant=advance.merchant, lifted_at__isnull=True)
    if already.exists() or Blacklisting.objects.filter(advance=advance).exists():
        return
    Blacklisting.objects.create(
        merchant=advance.merchant,
        advance=advance,
        created_at=now,
        reason=f"Advance {advance.ref} is {days} days past due.",
    )


# Blacklist -------------------------------------------------------------------------------------


def blacklist_add(*, merchant: Merchant, officer: User, reason: str, now: datetime) -> Blacklisting:
    _require(officer, "financing.manage_blacklist")
    if not reason.strip():
        raise WrongState("Say why the merchant is blacklisted.")
    try:
        with transaction.atomic():
            return Blacklisting.objects.create(
                merchant=merchant, created_by=officer, created_at=now, reason=reason
            )
    except IntegrityError:
        raise WrongState(f"{merchant.legal_name} is already blacklisted.") from None


def blacklist_lift(
    *, blacklisting: Blacklisting, officer: User, reason: str, now: datetime
) -> Blacklisting:
    """Lift a blacklisting; only an officer can, and only with a written reason."""
    _require(officer, "financing.manage_blacklist")
    if not reason.strip():
        raise WrongState("Lifting a blacklisting needs a written reason.")
    updated = Blacklisting.objects.filter(pk=blacklisting.pk, lifted_at__isnull=True).update(
        lifted_at=now, lifted_by=officer, lift_reason=reason
    )
    if not updated:
        raise WrongState("This blacklisting was already lifted.")
    blacklisting.refresh_from_db()
    return blacklisting


def _money(minor: int, currency: str) -> str:
    return f"{format_minor_units(minor, currency)} {currency}"
