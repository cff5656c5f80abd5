"""Fee math for financing: the one module that prices an advance, with one rounding rule.

Amounts are ``int`` minor units of one ISO 4217 currency (``ledger.money``); rates are ``int``
basis points (1800 = 18.00 % a year, 8000 = an 80 % advance rate). Every figure is an exact
integer product divided once, and that one division is rounded by :data:`ROUNDING`
(ROUND_HALF_UP) to the minor unit. No float ever touches an amount.

The division is done in integer arithmetic rather than with ``Decimal``: a ``Decimal`` quotient
is first rounded to the context precision (28 digits, half-even) and then quantized, and that
double rounding can turn 2.4999…9 into 2.5 and then 3.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import models

from ledger.money import MAX_MINOR_UNITS, currency_exponent

#: The rounding rule for every fee, advance and rate in this module.
ROUNDING = ROUND_HALF_UP

BASIS_POINTS = 10_000  # 100 %
MAX_ADVANCE_RATE_BP = 10_000  # an advance never exceeds the face value
MAX_ANNUAL_RATE_BP = 100_000  # 1000 % a year: beyond that it is a typo, not a price
APR_YEAR_DAYS = 365


class DayCount(models.TextChoices):
    """How a facility counts interest days: actual days over a fixed year of ``basis`` days."""

    ACT_360 = "ACT/360", "Actual/360"
    # ACT/365 Fixed: always 365, leap years included (not Actual/Actual).
    ACT_365 = "ACT/365", "Actual/365 (Fixed)"

    @property
    def basis(self) -> int:
        """Return the number of days in this convention's year."""
        return 360 if self is DayCount.ACT_360 else 365


@dataclass(frozen=True, slots=True)
class Quote:
    """The price of one advance against one receivable, every amount in minor units."""

    currency: str
    face_minor: int
    advance_minor: int  # face * advance rate
    fee_minor: int  # discount fee on the advance
    net_minor: int  # paid out to the merchant: advance - fee
    reserve_minor: int  # held back until the debtor pays: face - advance
    days: int
    annual_rate_bp: int
    advance_rate_bp: int
    day_count: DayCount
    apr: Decimal  # simple annual percentage rate on net proceeds, see apr_equivalent()


def _round_half_up(numerator: int, denominator: int) -> int:
    """Return numerator / denominator rounded ROUND_HALF_UP; both non-negative, exact."""
    quotient, remainder = divmod(numerator, denominator)
    return quotient + 1 if 2 * remainder >= denominator else quotient


def fee_earned(fee_minor: int, days_elapsed: int, days: int) -> int:
    """Return the part of a discount fee earned after ``days_elapsed`` of ``days``, straight-line,
    ROUND_HALF_UP; all of it from the last day on."""
    fee = _amount("fee_minor", fee_minor, 0)
    total = _int("days", days, 1)
    elapsed = min(max(_int("days_elapsed", days_elapsed, -(10**6)), 0), total)
    return _round_half_up(fee * elapsed, total)


def _int(name: str, value: object, low: int, high: int | None = None, unit: str = "") -> int:
    """Return ``value`` if it is an int (not bool) within low..high, else raise ValueError."""
    in_unit = f" ({unit})" if unit else ""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer{in_unit}, not {type(value).__name__}.")
    if value < low or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{name} must be {bounds}{in_unit}; got {value}.")
    return value


def _amount(name: str, value: object, low: int) -> int:
    return _int(name, value, low, MAX_MINOR_UNITS - 1, "minor units")


def _day_count(value: object) -> DayCount:
    # A model field hands back a plain str ("ACT/360"); accept it, refuse anything else.
    if isinstance(value, str) and value in DayCount.values:
        return DayCount(value)
    choices = ", ".join(DayCount.values)
    raise ValueError(f"day_count must be one of {choices}; got {value!r}.")


def advance_amount(face_minor: int, advance_rate_bp: int) -> int:
    """Return the advance on a receivable: face * advance rate, ROUND_HALF_UP.

    :raises ValueError: face not a positive integer below ``MAX_MINOR_UNITS``; advance rate not
        an integer in 0..10000 bp.
    """
    face = _amount("face_minor", face_minor, 1)
    rate = _int("advance_rate_bp", advance_rate_bp, 0, MAX_ADVANCE_RATE_BP, "bp")
    return _round_half_up(face * rate, BASIS_POINTS)


def _interest(
    name: str, principal_minor: int, annual_rate_bp: int, days: int, day_count: DayCount
) -> int:
    principal = _amount(name, principal_minor, 0)
    rate = _int("annual_rate_bp", annual_rate_bp, 0, MAX_ANNUAL_RATE_BP, "bp")
    days = _int("days", days, 1)
    basis = _day_count(day_count).basis
    return _round_half_up(principal * rate * days, BASIS_POINTS * basis)


def discount_fee(advance_minor: int, annual_rate_bp: int, days: int, day_count: DayCount) -> int:
    """Return the discount fee: advance * annual rate * days / day-count basis, ROUND_HALF_UP.

    Example: 1_000_000 minor (10,000.00 EUR) at 1800 bp for 7 days ACT/360 is 3_500 (35.00).

    :raises ValueError: advance not an integer in 0..``MAX_MINOR_UNITS`` - 1; annual rate not an
        integer in 0..100000 bp; days below 1; an unknown day count.
    """
    return _interest("advance_minor", advance_minor, annual_rate_bp, days, day_count)


def late_fee(outstanding_minor: int, annual_rate_bp: int, days: int, day_count: DayCount) -> int:
    """Return the late fee: outstanding * annual rate * overdue days / basis, ROUND_HALF_UP.

    :raises ValueError: as :func:`discount_fee`, for the outstanding amount.
    """
    return _interest("outstanding_minor", outstanding_minor, annual_rate_bp, days, day_count)


def late_fee_cap(principal_minor: int, cap_bp: int) -> int:
    """Return the most late fees a principal may carry: principal * cap, ROUND_HALF_UP.

    :raises ValueError: principal not an integer in 0..``MAX_MINOR_UNITS`` - 1; cap not an
        integer in 0..10000 bp.
    """
    principal = _amount("principal_minor", principal_minor, 0)
    cap = _int("cap_bp", cap_bp, 0, BASIS_POINTS, "bp")
    return _round_half_up(principal * cap, BASIS_POINTS)


def apr_equivalent(fee_minor: int, net_minor: int, days: int) -> Decimal:
    """Return the simple annual percentage rate a merchant effectively pays, to 0.01.

    ``apr = fee / net * 365 / days * 100``, ROUND_HALF_UP to two decimals, where ``net`` is
    what the merchant receives (advance - fee). The fee is paid up front, so it is measured
    against the net proceeds rather than the advance, and always over a 365-day year whatever
    the facility's day count, so quotes from ACT/360 and ACT/365 facilities compare.
    Example: fee 3_500 on net 996_500 for 7 days is 18.31 (%), against a nominal 18.00.

    :raises ValueError: fee negative, net not positive, days below 1, non-integers.
    """
    days = _int("days", days, 1)
    return _apr(fee_minor, net_minor, days, 1)


def _tenors(tenors: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """Return (sum of advance * days, sum of advance) over ``(advance_minor, days)`` pairs."""
    if not tenors:
        raise ValueError("At least one (advance, days) pair is needed.")
    weighted = total = 0
    for advance_minor, days in tenors:
        advance = _amount("advance_minor", advance_minor, 1)
        weighted += advance * _int("days", days, 1)
        total += advance
    return weighted, total


def mean_tenor(tenors: Sequence[tuple[int, int]]) -> Decimal:
    """Return the advance-weighted mean tenor in days, to 0.01, ROUND_HALF_UP.

    ``sum(advance * days) / sum(advance)`` over ``(advance_minor, days)`` pairs: what an
    advance against receivables due on different days is outstanding for, on average.
    Example: 1_000 for 10 days and 1_000 for 11 days is 10.50.

    :raises ValueError: no pairs; an advance not positive or days below 1; non-integers.
    """
    weighted, total = _tenors(tenors)
    return Decimal(f"{_round_half_up(weighted * 100, total)}E-2")


def apr_equivalent_mean(
    fee_minor: int, net_minor: int, tenors: Sequence[tuple[int, int]]
) -> Decimal:
    """Return the APR-equivalent of a fee paid over the mean tenor of ``tenors``, to 0.01.

    As :func:`apr_equivalent` with ``days`` the exact (unrounded) :func:`mean_tenor`, so the one
    rounding happens once, at the end: ``fee * 365 * sum(advance) / (net * sum(advance * days))``.

    :raises ValueError: as :func:`apr_equivalent` and :func:`mean_tenor`.
    """
    weighted, total = _tenors(tenors)
    return _apr(fee_minor, net_minor, weighted, total)


def _apr(fee_minor: int, net_minor: int, day_numerator: int, day_denominator: int) -> Decimal:
    fee = _int("fee_minor", fee_minor, 0, unit="minor units")
    net = _int("net_minor", net_minor, 1, unit="minor units")
    hundredths = _round_half_up(
        fee * APR_YEAR_DAYS * 100 * 100 * day_denominator, net * day_numerator
    )
    # From a string, so no Decimal context precision can round the result.
    return Decimal(f"{hundredths}E-2")


def quote_price(
    *,
    face_minor: int,
    currency: str,
    advance_rate_bp: int,
    annual_rate_bp: int,
    day_count: DayCount,
    days: int,
) -> Quote:
    """Price an advance against a receivable of ``face_minor`` due in ``days`` days.

    :raises MoneyError: ``currency`` is not an ISO 4217 currency (a ValueError).
    :raises ValueError: any input refused by :func:`advance_amount` or :func:`discount_fee`;
        an advance of zero; a fee that would consume the whole advance.
    """
    currency_exponent(currency)
    advance = advance_amount(face_minor, advance_rate_bp)
    if advance == 0:
        raise ValueError(
            f"An advance rate of {advance_rate_bp} bp on {face_minor} minor units advances nothing."
        )
    convention = _day_count(day_count)
    fee = discount_fee(advance, annual_rate_bp, days, convention)
    net = advance - fee
    if net <= 0:
        raise ValueError(
            f"A fee of {fee} minor units ({annual_rate_bp} bp for {days} days) would consume "
            f"the whole advance of {advance}."
        )
    return Quote(
        currency=currency,
        face_minor=face_minor,
        advance_minor=advance,
        fee_minor=fee,
        net_minor=net,
        reserve_minor=face_minor - advance,
        days=days,
        annual_rate_bp=annual_rate_bp,
        advance_rate_bp=advance_rate_bp,
        day_count=convention,
        apr=apr_equivalent(fee, net, days),
    )
