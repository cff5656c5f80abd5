"""The officer's home: what awaits this officer, what is late or broken, and the last proofs.

``officer_home`` returns sections in the order shown; each comes from one builder function in
``SECTIONS``, so a new concern is one function added to the list.
A builder returns ``None`` when its section is not for this officer (a permission they lack).
The admin index shows the sections above the app list (``config.admin_site``, which names this
function in ``settings.OFFICER_HOME``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.contrib.admin.utils import quote
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.urls import reverse

from financing.admin.settlement import lag_display
from financing.books.models import BooksVerification
from financing.business_day import business_day
from financing.models import (
    Advance,
    AssignmentNotice,
    Break,
    DeadLetter,
    RiskChange,
    SuspenseItem,
)
from financing.reconciliation.breaks import AGE_BUCKETS
from financing.reconciliation.selectors import open_breaks_by_age
from financing.risk import grade_of
from financing.selectors import early_warnings_active
from financing.services.suspense import ALLOCATE_PERMISSION
from financing.settlement_selectors import settlement_lag
from ledger.models import LedgerVerification
from ledger.money import Money

SHOWN = 8  # rows per section; the section links to the full list


@dataclass(frozen=True)
class HomeItem:
    label: str
    url: str
    detail: str = ""
    tone: str = ""  # "ok", "bad" or "" (the stylesheet's chainfin-<tone>)


@dataclass(frozen=True)
class HomeSection:
    key: str
    title: str
    items: tuple[HomeItem, ...]
    total: int
    more_url: str = ""
    empty: str = "Nothing here."
    help: str = field(default="")


SectionBuilder = Callable[[User, datetime], HomeSection | None]


def officer_home(*, user: User, now: datetime) -> list[HomeSection]:
    """Return the home's sections for ``user`` as of ``now``, in the order shown."""
    return [section for build in SECTIONS if (section := build(user, now)) is not None]


def _advance_url(advance: Advance) -> str:
    return reverse("admin:financing_advance_change", args=[quote(advance.pk)])


def _advance_item(advance: Advance) -> HomeItem:
    detail = (
        f"{advance.merchant.legal_name} · {Money.display(advance.advance_minor, advance.currency)}"
        f" · due {advance.due_date:%Y-%m-%d} · risk {advance.risk_score} "
        f"({grade_of(advance.risk_score)})"
    )
    return HomeItem(label=advance.ref, url=_advance_url(advance), detail=detail)


def _advances_section(
    key: str, title: str, rows: QuerySet[Advance], more: str, empty: str, help: str = ""
) -> HomeSection:
    rows = rows.select_related("merchant")
    return HomeSection(
        key=key,
        title=title,
        items=tuple(_advance_item(a) for a in rows[:SHOWN]),
        total=rows.count(),
        more_url=more,
        empty=empty,
        help=help,
    )


def to_approve(user: User, now: datetime) -> HomeSection | None:
    if not user.has_perm("financing.approve_advance"):
        return None
    queue = reverse("admin:financing_advance_changelist")
    return _advances_section(
        "to-approve",
        "To approve",
        Advance.objects.filter(status=Advance.Status.REQUESTED).order_by("requested_at", "id"),
        f"{queue}?queue=requested",
        "No request waits for a decision.",
    )


def to_authorize(user: User, now: datetime) -> HomeSection | None:
    if not user.has_perm("financing.authorize_advance"):
        return None
    queue = reverse("admin:financing_advance_changelist")
    return _advances_section(
        "to-authorize",
        "To authorize",
        # Awaiting *me*: an advance I approved needs another officer's authorization.
        Advance.objects.filter(status=Advance.Status.APPROVED)
        .exclude(approved_by=user)
        .order_by("approved_at", "id"),
        f"{queue}?queue=approved",
        "No approved advance waits for your authorization.",
    )


def to_confirm(user: User, now: datetime) -> HomeSection | None:
    if not user.has_perm("financing.confirm_riskchange"):
        return None
    # Awaiting *me*: another officer's proposal; my own waits for a different senior officer.
    rows = (
        RiskChange.objects.filter(status=RiskChange.Status.PROPOSED)
        .exclude(proposed_by=user)
        .select_related("proposed_by")
        .order_by("proposed_at", "id")
    )
    items = tuple(
        HomeItem(
            label=f"{change.get_kind_display()} · {change.target}",
            url=reverse("admin:financing_riskchange_decide", args=[quote(change.pk)]),
            detail=f"proposed by {change.proposed_by.get_username()} "
            f"{change.proposed_at:%Y-%m-%d %H:%M} UTC · {change.reason[:120]}",
        )
        for change in rows[:SHOWN]
    )
    changelist = reverse("admin:financing_riskchange_changelist")
    return HomeSection(
        key="to-confirm",
        title="To confirm",
        items=items,
        total=rows.count(),
        more_url=f"{changelist}?status__exact=proposed",
        empty="No other officer's proposal waits for your confirmation.",
        help="Facility terms, debtor limits, blacklist lifts, duplicate clearances and suspense "
        "allocations take effect only when a different senior officer confirms them.",
    )


def overdue(user: User, now: datetime) -> HomeSection | None:
    queue = reverse("admin:financing_advance_changelist")
    return _advances_section(
        "overdue",
        "Overdue advances",
        Advance.objects.filter(status=Advance.Status.OVERDUE).order_by("due_date", "id"),
        f"{queue}?queue=overdue",
        "No advance is overdue.",
    )


def failed_notices(user: User, now: datetime) -> HomeSection | None:
    rows = AssignmentNotice.objects.filter(status=AssignmentNotice.Status.FAILED).select_related(
        "advance", "debtor"
    )
    items = tuple(
        HomeItem(
            label=f"{n.advance.ref} → {n.debtor.name}",
            url=reverse("admin:financing_assignmentnotice_change", args=[n.pk]),
            detail=f"{n.get_channel_display()} · {n.last_error[:120]}",
            tone="bad",
        )
        for n in rows.order_by("created_at", "id")[:SHOWN]
    )
    changelist = reverse("admin:financing_assignmentnotice_changelist")
    return HomeSection(
        key="failed-notices",
        title="Failed notices",
        items=items,
        total=rows.count(),
        more_url=f"{changelist}?status__exact=failed",
        empty="Every notice of assignment was delivered or is still being tried.",
        help="Until its debtor is told, an assignment is not perfected: re-send or call.",
    )


def suspense_to_allocate(user: User, now: datetime) -> HomeSection | None:
    if not user.has_perm(ALLOCATE_PERMISSION):
        return None
    rows = SuspenseItem.objects.filter(status=SuspenseItem.Status.OPEN).select_related(
        "merchant", "payout_entry"
    )
    items = tuple(
        HomeItem(
            label=f"{item.merchant.legal_name} · {Money.display(item.amount_minor, item.currency)}",
            url=reverse("admin:financing_suspenseitem_allocate", args=[quote(item.pk)]),
            detail=f"payout {item.payout_entry.external_ref} · {item.reason[:120]}",
        )
        for item in rows.order_by("created_at", "id")[:SHOWN]
    )
    return HomeSection(
        key="suspense",
        title="Suspense to allocate",
        items=items,
        total=rows.count(),
        more_url=reverse("admin:financing_suspenseitem_changelist"),
        empty="No money waits in suspense.",
        help="Money received that no payout line could be applied to; allocating it is four-eyes.",
    )


def breaks_ageing(user: User, now: datetime) -> HomeSection | None:
    ages = open_breaks_by_age(today=now.date())
    queue = reverse("admin:financing_break_changelist")
    oldest = AGE_BUCKETS[-1][0]
    items = tuple(
        HomeItem(
            label=f"{label}: {ages.get(label, 0):,} open",
            url=f"{queue}?age={label}",
            tone="bad" if label == oldest and ages.get(label) else "",
        )
        for label, _low, _high in AGE_BUCKETS
    )
    return HomeSection(
        key="breaks",
        title="Open breaks by age",
        items=items if sum(ages.values()) else (),
        total=Break.objects.filter(status=Break.Status.OPEN).count(),
        more_url=queue,
        empty="No reconciliation break is open.",
        help="Differences between the bank, the marketplaces and the books; each is resolved "
        "with a reason, and where money moves by an adjustment a second officer confirms.",
    )


def dead_letters(user: User, now: datetime) -> HomeSection | None:
    rows = DeadLetter.objects.filter(rerun_at__isnull=True)
    items = tuple(
        HomeItem(
            label=f"{letter.task_name.rsplit('.', 1)[-1]} "
            + ", ".join(f"{k}={v}" for k, v in sorted(letter.task_kwargs.items())),
            url=reverse("admin:financing_deadletter_change", args=[quote(letter.pk)]),
            detail=f"{letter.failed_at:%Y-%m-%d %H:%M} UTC · {letter.attempts} attempt(s) · "
            f"{letter.error[:120]}",
            tone="bad",
        )
        for letter in rows.order_by("failed_at", "id")[:SHOWN]
    )
    changelist = reverse("admin:financing_deadletter_changelist")
    return HomeSection(
        key="dead-letters",
        title="Dead letters",
        items=items,
        total=rows.count(),
        more_url=f"{changelist}?rerun_at__isempty=1",
        empty="No task has given up.",
        help="Tasks that kept failing: re-run each once its cause is fixed.",
    )


def settlement_behind(user: User, now: datetime) -> HomeSection | None:
    lag = settlement_lag(now=now)
    works = reverse("admin:financing_settlementwork_changelist")
    waited = None if lag.oldest_pending_at is None else now - lag.oldest_pending_at
    # Older than a sweep's re-send: more than a worker briefly behind.
    stuck = waited is not None and waited.total_seconds() > settings.SETTLEMENT_RESEND_AFTER_SECONDS
    items = (
        HomeItem(
            label=f"{lag.pending:,} pending",
            url=f"{works}?status__exact=pending",
            detail="nothing waits" if waited is None else f"oldest {lag_display(waited)} ago",
            tone="bad" if stuck else "ok",
        ),
        HomeItem(
            label=f"Median lag {lag_display(lag.median_lag)}",
            url=f"{works}?status__exact=done&kind__exact=payout",
            detail=f"payout recorded → settled, {lag.settled_recently:,} payout(s) in 24 h",
        ),
    )
    return HomeSection(
        key="settlement-lag",
        title="Settlement lag",
        items=items,
        total=len(items),
        help="Workers apply each payout after it is recorded; the sweep re-sends what waits.",
    )


def early_warnings(user: User, now: datetime) -> HomeSection | None:
    today = business_day(now)
    active = early_warnings_active(today=today)
    # The latest sighting of each (merchant, kind): a condition seen daily is one line here.
    seen: set[tuple[int, str]] = set()
    items: list[HomeItem] = []
    for warning in active.select_related("merchant").order_by("-observed_on", "-id"):
        if len(items) == SHOWN:
            break
        if (warning.merchant_id, warning.kind) in seen:
            continue
        seen.add((warning.merchant_id, warning.kind))
        items.append(
            HomeItem(
                label=f"{warning.merchant.legal_name} · {warning.get_kind_display()}",
                url=reverse("admin:financing_earlywarning_change", args=[quote(warning.pk)]),
                detail=f"{warning.observed_on:%Y-%m-%d} · {warning.evidence.get('summary', '')}",
                tone="bad",
            )
        )
    return HomeSection(
        key="early-warnings",
        title="Early warnings",
        items=tuple(items),
        total=active.values("merchant_id", "kind").distinct().count(),
        more_url=reverse("admin:financing_earlywarning_changelist"),
        empty="No merchant with money outstanding shows a warning sign.",
        help="Seen by the daily check after funding: orders or deliveries falling, returns or "
        "credit notes spiking, financed receivables paid late or short.",
    )


def verifications(user: User, now: datetime) -> HomeSection | None:
    ledger = LedgerVerification.objects.order_by("-started_at", "-id").first()
    books = BooksVerification.objects.order_by("-started_at", "-id").first()
    items = []
    if ledger is not None:
        items.append(
            HomeItem(
                label=f"Ledger: {ledger.get_outcome_display()}",
                url=reverse("admin:ledger_ledgerverification_changelist"),
                detail=f"{ledger.started_at:%Y-%m-%d %H:%M} UTC · {ledger.chains_checked:,} "
                f"chain(s), {ledger.entries_checked:,} entries"
                + (f" · {ledger.problem}" if ledger.problem else ""),
                tone=_tone(ledger.outcome, LedgerVerification.Outcome.INTACT),
            )
        )
    if books is not None:
        items.append(
            HomeItem(
                label=f"Books: {books.get_outcome_display()}",
                url=reverse("admin:books_booksverification_changelist"),
                detail=f"{books.started_at:%Y-%m-%d %H:%M} UTC · {books.entries_checked:,} "
                f"journal entries, {books.postings_checked:,} postings"
                + (f" · {books.problem}" if books.problem else ""),
                tone=_tone(books.outcome, BooksVerification.Outcome.BALANCED),
            )
        )
    return HomeSection(
        key="verifications",
        title="Last verifications",
        items=tuple(items),
        total=len(items),
        empty="Neither the ledger nor the books have been verified yet.",
    )


def _tone(outcome: str, good: str) -> str:
    return "ok" if outcome == good else "bad" if outcome == "broken" else ""


SECTIONS: list[SectionBuilder] = [
    to_approve,
    to_authorize,
    to_confirm,
    overdue,
    failed_notices,
    suspense_to_allocate,
    breaks_ageing,
    dead_letters,
    settlement_behind,
    early_warnings,
    verifications,
]
