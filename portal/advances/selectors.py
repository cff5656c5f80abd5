"""The merchant's advances as the portal shows them: the invoices it may finance now, its
advances, and one advance followed from request to repayment.

Every read is scoped by the merchant passed in (the portal's tenant): an advance ref of another
merchant finds nothing, which the views turn into a 404. Officers' internal notes
(``Advance.decision_note``) are never read here; only ``Advance.merchant_note`` is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Count, F, QuerySet
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from financing.eligibility import Verdict, open_verdicts
from financing.models import Advance, Assignment, LineAllocation, Receivable
from financing.services.requests import AdvanceQuote
from financing.settlement_selectors import ReserveRelease, repayment_history
from merchants.models import Merchant


@dataclass(frozen=True)
class Fundable:
    """The invoices that can be financed today, and how many others cannot (and why, elsewhere)."""

    verdicts: tuple[Verdict, ...]
    not_fundable: int


def fundable_receivables(*, merchant: Merchant, today: date) -> Fundable:
    """Return the merchant's invoices that can be financed today, soonest due first."""
    eligible = sorted(
        (v for v in open_verdicts(merchant, today) if v.eligible), key=lambda v: (v.due_date, v.ref)
    )
    receivables = Receivable.objects.filter(merchant=merchant).count()
    return Fundable(verdicts=tuple(eligible), not_fundable=receivables - len(eligible))


def advances_for_merchant(*, merchant: Merchant) -> QuerySet[Advance]:
    """Return the merchant's advances, newest first, each with how many invoices it holds and
    what it pays out (``net_minor``: the advance less the fee)."""
    return (
        Advance.objects.filter(merchant=merchant)
        .annotate(invoices=Count("assignments"), net_minor=F("advance_minor") - F("fee_minor"))
        .order_by("-requested_at", "-id")
    )


def advance_of(*, merchant: Merchant, ref: str) -> Advance | None:
    """Return the merchant's advance ``ref``, or None when it has none by that ref."""
    return Advance.objects.filter(merchant=merchant, ref=ref).first()


@dataclass(frozen=True)
class Price:
    """A price as the merchant reads it, from a quote or from an advance that carries one."""

    currency: str
    face_minor: int
    advance_minor: int
    fee_minor: int
    reserve_minor: int
    apr: Decimal
    due_date: date
    expires_at: datetime

    @property
    def net_minor(self) -> int:
        """Paid out now: the advance less the fee."""
        return self.advance_minor - self.fee_minor

    @property
    def in_all_minor(self) -> int:
        """What the merchant gets in all if every buyer pays in full on time."""
        return self.face_minor - self.fee_minor


def price_of_quote(quote: AdvanceQuote) -> Price:
    return Price(
        currency=quote.currency,
        face_minor=quote.total("face_minor"),
        advance_minor=quote.total("advance_minor"),
        fee_minor=quote.total("fee_minor"),
        reserve_minor=quote.total("reserve_minor"),
        apr=quote.apr,
        due_date=quote.due_date,
        expires_at=quote.expires_at,
    )


def price_of_advance(advance: Advance) -> Price:
    return Price(
        currency=advance.currency,
        face_minor=advance.face_minor,
        advance_minor=advance.advance_minor,
        fee_minor=advance.fee_minor,
        reserve_minor=advance.reserve_minor,
        apr=advance.apr,
        due_date=advance.due_date,
        expires_at=advance.quote_expires_at,
    )


class StepState:
    DONE = "done"
    CURRENT = "current"
    UPCOMING = "upcoming"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Step:
    """One stage of an advance's life, as the merchant follows it."""

    label: Promise
    state: str
    at: datetime | None = None


def advance_timeline(advance: Advance) -> list[Step]:
    """Return the stages from request to repayment: what happened, what is now, what comes."""
    status, S = advance.status, Advance.Status
    steps = [
        Step(_("You requested it and accepted the price"), StepState.DONE, advance.requested_at)
    ]
    if status == S.REQUOTE:
        steps.append(Step(_("A new price waits for your answer"), StepState.CURRENT))
    if status == S.WITHDRAWN:
        return [*steps, Step(_("You withdrew it"), StepState.STOPPED, advance.decided_at)]
    if status == S.REJECTED:
        return [*steps, Step(_("The bank turned it down"), StepState.STOPPED, advance.decided_at)]
    if advance.approved_at is not None:
        steps.append(Step(_("Approved by the bank"), StepState.DONE, advance.approved_at))
    else:
        reviewing = StepState.CURRENT if status == S.REQUESTED else StepState.UPCOMING
        steps.append(Step(_("Review by the bank"), reviewing))
    if advance.disbursed_at is not None:
        steps.append(Step(_("Paid out to you"), StepState.DONE, advance.disbursed_at))
    elif status == S.APPROVED:
        steps.append(Step(_("Paying out: a second officer releases the money"), StepState.CURRENT))
    else:
        steps.append(Step(_("Paid out to you"), StepState.UPCOMING))
    if status == S.REPAID:
        steps.append(Step(_("Repaid by your buyers"), StepState.DONE, advance.repaid_at))
    elif status == S.OVERDUE:
        steps.append(Step(_("Overdue: a buyer has not paid by the due date"), StepState.STOPPED))
    elif status == S.DISBURSED:
        steps.append(Step(_("Being repaid as your buyers pay"), StepState.CURRENT))
    else:
        steps.append(Step(_("Repaid by your buyers"), StepState.UPCOMING))
    return steps


@dataclass(frozen=True)
class Repayment:
    """One payout line through the waterfall: late fees, then the advance, then the rest to the
    merchant less what it owes on recourse; anything beyond what was owed went to suspense."""

    line: LineAllocation

    @property
    def by_the_bank(self) -> bool:
        """Money the bank allocated by hand from unmatched payments, not a marketplace payout."""
        return self.line.payout_entry.type == "suspense.allocated"

    @property
    def to_you_minor(self) -> int:
        return self.line.to_merchant_minor - self.line.recourse_netted_minor


@dataclass(frozen=True)
class Release:
    """Reserve paid back when a receivable closed, less what was kept for recourse owed."""

    release: ReserveRelease

    @property
    def to_you_minor(self) -> int:
        return self.release.amount_minor - self.release.recourse_netted_minor


@dataclass(frozen=True)
class AdvanceDetail:
    advance: Advance
    receivables: tuple[Assignment, ...]
    steps: tuple[Step, ...]
    repayments: tuple[Repayment, ...]
    releases: tuple[Release, ...]

    @property
    def price(self) -> Price:
        return price_of_advance(self.advance)

    @property
    def stage(self) -> str:
        """How to read its price: "paid" out, "closed" without a payout, or still "pending"."""
        if self.advance.disbursed_at is not None:
            return "paid"
        if self.advance.status in (Advance.Status.WITHDRAWN, Advance.Status.REJECTED):
            return "closed"
        return "pending"

    @property
    def principal_repaid_minor(self) -> int:
        return sum(r.line.to_principal_minor for r in self.repayments)

    @property
    def principal_unpaid_minor(self) -> int:
        """The advance still owed on its financed invoices (as the dashboard counts it)."""
        return sum(
            r.advance_minor - r.principal_repaid_minor
            for r in self.receivables
            if r.status == Assignment.Status.ASSIGNED
        )

    @property
    def paid_on_to_you_minor(self) -> int:
        """What reached the merchant: each line's part beyond the advance (its reserve coming
        back as the buyer pays) and the reserve released at closing, less recourse kept."""
        return sum(r.to_you_minor for r in self.repayments) + sum(
            r.to_you_minor for r in self.releases
        )

    @property
    def price_pending(self) -> bool:
        """A new price the merchant has not accepted yet (the advance is in requote)."""
        return self.advance.status == Advance.Status.REQUOTE


def advance_detail(*, advance: Advance) -> AdvanceDetail:
    """Read one advance (already scoped to the merchant): its invoices, its stages, and every
    payout line and reserve release that repaid it."""
    history = repayment_history(advance=advance)
    return AdvanceDetail(
        advance=advance,
        receivables=tuple(advance.assignments.order_by("due_date", "id")),
        steps=tuple(advance_timeline(advance)),
        repayments=tuple(Repayment(line) for line in history.lines),
        releases=tuple(Release(release) for release in history.releases),
    )
