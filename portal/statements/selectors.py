"""A merchant's monthly statements, read from the double-entry books.

Every figure is a sum of postings: the merchant's own accounts (advances receivable, reserve
payable, recourse receivable, suspense) give each section's opening, movements and closing,
so a section's closing less its opening is exactly its account's movement in the month; the
bank's legs of the same journal entries (discount fee withheld, money paid out) give the rest.
Months are the bank's business months (``CHAINFIN_BUSINESS_TZ``), as its business days are.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Sum
from django.db.models.functions import TruncMonth

from financing.books.models import Account, Posting
from merchants.models import Merchant

# The merchant's accounts (code prefixes of financing.accounts.Chart) and the sign that turns a
# balance (debit positive) into what the merchant reads: owed on advances, reserve held for it,
# recourse it owes, payments held unmatched.
SECTIONS: dict[str, tuple[str, int]] = {
    "advances": ("advances_receivable", 1),
    "reserve": ("merchant_reserve_payable", -1),
    "recourse": ("recourse_receivable", 1),
    "suspense": ("suspense", -1),
}
_SECTION_OF_PREFIX = {prefix: section for section, (prefix, _) in SECTIONS.items()}

# What moved the money, from the journal key's first part (the services that post name it).
_KIND_OF_KEY = {
    "disburse": "financed",
    "late": "late_fees",
    "settle": "settlement",
    "suspense": "settlement",
    "dilute": "dilution",
}
OTHER = "other"


@dataclass(frozen=True)
class Line:
    """One total of a statement: ``kind`` names it (statements/words.py), signed as read."""

    kind: str
    amount_minor: int


@dataclass(frozen=True)
class Section:
    """One of the merchant's accounts over the month."""

    name: str
    opening_minor: int
    lines: tuple[Line, ...]
    closing_minor: int


@dataclass(frozen=True)
class Statement:
    """One month of one currency: what happened, and each account from opening to closing."""

    month: date
    currency: str
    summary: tuple[Line, ...]
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class StatementMonth:
    month: date
    currencies: tuple[str, ...]


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.CHAINFIN_BUSINESS_TZ)


def _accounts(merchant: Merchant) -> dict[int, tuple[str, str]]:
    """The merchant's statement accounts: id → (section, currency)."""
    found = {}
    for pk, code, currency in Account.objects.filter(merchant_id=merchant.pk).values_list(
        "pk", "code", "currency"
    ):
        section = _SECTION_OF_PREFIX.get(code.split(":", 1)[0])
        if section is not None:
            found[pk] = (section, currency)
    return found


def statement_months(*, merchant: Merchant) -> list[StatementMonth]:
    """Return the months in which the merchant's accounts moved, newest first."""
    accounts = _accounts(merchant)
    months: dict[date, set[str]] = defaultdict(set)
    rows = (
        Posting.objects.filter(account_id__in=accounts)
        .annotate(month=TruncMonth("entry__posted_at", tzinfo=_zone()))
        .values_list("month", "account_id")
        .distinct()
    )
    for month, account_id in rows:
        months[_as_date(month)].add(accounts[account_id][1])
    return [StatementMonth(m, tuple(sorted(months[m]))) for m in sorted(months, reverse=True)]


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """The first instant of ``month`` and of the next, in the bank's zone."""
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return (
        datetime.combine(month.replace(day=1), time.min, tzinfo=_zone()),
        datetime.combine(following, time.min, tzinfo=_zone()),
    )


def statements_read(*, merchant: Merchant, month: date) -> list[Statement]:
    """Return the merchant's statements of ``month``, one per currency that moved in it
    (alphabetical); empty when nothing of the merchant's moved that month."""
    accounts = _accounts(merchant)
    start, end = month_bounds(month)
    opening: dict[int, int] = dict(
        Posting.objects.filter(account_id__in=accounts, entry__posted_at__lt=start)
        .values_list("account_id")
        .annotate(total=Sum("amount_minor"))
        .values_list("account_id", "total")
    )
    legs = list(
        Posting.objects.filter(
            account_id__in=accounts, entry__posted_at__gte=start, entry__posted_at__lt=end
        ).values_list("entry_id", "entry__key", "account_id", "amount_minor")
    )
    bank_legs = _bank_legs({entry_id for entry_id, *_ in legs}, set(accounts))
    currencies = sorted({accounts[account_id][1] for _, _, account_id, _ in legs})
    return [
        _statement(month, currency, accounts, opening, legs, bank_legs) for currency in currencies
    ]


def _bank_legs(entry_ids: set[int], merchant_accounts: set[int]) -> list[tuple[str, str, int]]:
    """The bank's side of the merchant's journal entries: (key, account code, amount)."""
    return list(
        Posting.objects.filter(entry_id__in=entry_ids)
        .exclude(account_id__in=merchant_accounts)
        .values_list("entry__key", "account__code", "amount_minor")
    )


def _kind(key: str) -> str:
    return _KIND_OF_KEY.get(key.split(":", 1)[0], OTHER)


def _statement(
    month: date,
    currency: str,
    accounts: dict[int, tuple[str, str]],
    opening: dict[int, int],
    legs: list[tuple[int, str, int, int]],
    bank_legs: list[tuple[str, str, int]],
) -> Statement:
    by_section: dict[str, dict[tuple[str, bool], int]] = defaultdict(lambda: defaultdict(int))
    opened: dict[str, int] = defaultdict(int)
    for account_id, (section, account_currency) in accounts.items():
        if account_currency == currency:
            opened[section] += opening.get(account_id, 0) * SECTIONS[section][1]
    for _, key, account_id, amount in legs:
        section, account_currency = accounts[account_id]
        if account_currency == currency:
            read = amount * SECTIONS[section][1]
            by_section[section][(_kind(key), read > 0)] += read
    sections = []
    for name in SECTIONS:
        moved = by_section.get(name, {})
        if not moved and not opened.get(name):
            continue
        lines = tuple(
            Line(kind, total)
            for (kind, _), total in sorted(moved.items(), key=lambda item: _line_order(item[0]))
        )
        closing = opened.get(name, 0) + sum(line.amount_minor for line in lines)
        sections.append(Section(name, opened.get(name, 0), lines, closing))
    summary = _summary(currency, by_section, bank_legs)
    return Statement(month, currency, summary, tuple(sections))


def _line_order(kind_and_sign: tuple[str, bool]) -> tuple[int, bool]:
    kinds = (*_KIND_OF_KEY.values(), OTHER)
    kind, increase = kind_and_sign
    return kinds.index(kind), not increase


def _summary(
    currency: str,
    by_section: dict[str, dict[tuple[str, bool], int]],
    bank_legs: list[tuple[str, str, int]],
) -> tuple[Line, ...]:
    """The month in the words a supplier asks about, each a sum of postings of its entries."""

    def moved(section: str, kind: str, increase: bool) -> int:
        return by_section.get(section, {}).get((kind, increase), 0)

    def bank(prefix: str, kind: str | None = None) -> int:
        return sum(
            amount
            for key, code, amount in bank_legs
            if code == f"{prefix}:{currency}" and (kind is None or _kind(key) == kind)
        )

    # An advance is the face financed less the reserve held back from it; the fee is withheld
    # from it, and the rest (with reserve releases and unfinanced payouts) is paid to the
    # merchant through disbursement clearing.
    face = moved("advances", "financed", True)
    withheld = moved("reserve", "financed", True)
    recourse_raised = sum(total for (_, up), total in by_section.get("recourse", {}).items() if up)
    recourse_recovered = sum(
        total for (_, up), total in by_section.get("recourse", {}).items() if not up
    )
    return (
        Line("advances_disbursed", face - withheld),
        Line("discount_fees", -bank("unearned_discount", "financed")),
        Line("late_fees", moved("advances", "late_fees", True)),
        Line("repayments", -moved("advances", "settlement", False)),
        Line("reserve_releases", -moved("reserve", "settlement", False)),
        Line("recourse_raised", recourse_raised),
        Line("recourse_recovered", -recourse_recovered),
        Line("paid_to_you", -bank("disbursement_clearing")),
    )
