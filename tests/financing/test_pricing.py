"""Fee math: worked examples by hand, refusals, and the properties every price must keep."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from financing.pricing import (
    MAX_ADVANCE_RATE_BP,
    MAX_ANNUAL_RATE_BP,
    ROUNDING,
    DayCount,
    Quote,
    advance_amount,
    apr_equivalent,
    apr_equivalent_mean,
    discount_fee,
    late_fee,
    late_fee_cap,
    mean_tenor,
    quote_price,
)
from ledger.money import MAX_MINOR_UNITS, MoneyError

ACT_360, ACT_365 = DayCount.ACT_360, DayCount.ACT_365
MAX = MAX_MINOR_UNITS - 1

amounts = st.integers(min_value=0, max_value=MAX)
faces = st.integers(min_value=1, max_value=MAX)
annual_rates = st.integers(min_value=0, max_value=MAX_ANNUAL_RATE_BP)
advance_rates = st.integers(min_value=0, max_value=MAX_ADVANCE_RATE_BP)
day_counts = st.sampled_from(DayCount)
tenors = st.integers(min_value=1, max_value=3650)


def test_day_counts_have_their_basis_and_serve_as_model_choices() -> None:
    assert (ACT_360.basis, ACT_365.basis) == (360, 365)
    assert DayCount.choices == [("ACT/360", "Actual/360"), ("ACT/365", "Actual/365 (Fixed)")]
    assert ROUNDING == ROUND_HALF_UP


# Worked by hand: fee = advance * rate_bp / 10_000 * days / basis.
@pytest.mark.parametrize(
    ("advance", "rate_bp", "days", "day_count", "fee"),
    [
        # 10,000.00 EUR * 18 % * 7/360 = 35.00 exactly.
        (1_000_000, 1800, 7, ACT_360, 3_500),
        # 10,000.00 EUR * 18 % * 30/365 = 147.945205… -> 147.95; ACT/360 gives 150.00 exactly.
        (1_000_000, 1800, 30, ACT_365, 14_795),
        (1_000_000, 1800, 30, ACT_360, 15_000),
        # 10,005.00 EUR * 18 % * 2/360 = 10.005: a half-cent tie rounds up (half-even: 10.00).
        (1_000_500, 1800, 2, ACT_360, 1_001),
        # 0.05 * 50 % * 360/360 = 0.025: 2.5 minor units round up to 3 (half-even: 2).
        (5, 5000, 360, ACT_360, 3),
        # 800,000 JPY (no decimals) * 15 % * 45/365 = 14,794.52… -> 14,795 JPY.
        (800_000, 1500, 45, ACT_365, 14_795),
        # 11,111.110 KWD (3 decimals) * 12 % * 60/360 = 222.2222 -> 222.222 KWD.
        (11_111_110, 1200, 60, ACT_360, 222_222),
        # Nothing advanced or a zero rate costs nothing.
        (0, 1800, 30, ACT_360, 0),
        (1_000_000, 0, 30, ACT_360, 0),
    ],
)
def test_discount_fee_worked_examples(
    advance: int, rate_bp: int, days: int, day_count: DayCount, fee: int
) -> None:
    assert discount_fee(advance, rate_bp, days, day_count) == fee


@pytest.mark.parametrize(
    ("face", "rate_bp", "advance"),
    [
        (1_250_000, 8000, 1_000_000),  # 12,500.00 EUR at 80 % = 10,000.00
        (1_010, 8500, 859),  # 10.10 at 85 % = 8.585: a half-cent tie rounds up
        (12_345_678, 9000, 11_111_110),  # 12,345.678 KWD at 90 % = 11,111.1102 -> 11,111.110
        (1, 4999, 0),  # 0.4999 of a minor unit rounds down
        (1, 5000, 1),  # 0.5 rounds up
        (999, 10_000, 999),
        (999, 0, 0),
    ],
)
def test_advance_amount_worked_examples(face: int, rate_bp: int, advance: int) -> None:
    assert advance_amount(face, rate_bp) == advance


def test_late_fee_uses_the_same_formula_for_overdue_days() -> None:
    # 5,000.00 EUR overdue 10 days at 24 % ACT/365 = 32.876712… -> 32.88.
    assert late_fee(500_000, 2400, 10, ACT_365) == 3_288
    assert late_fee(500_000, 2400, 10, ACT_360) == discount_fee(500_000, 2400, 10, ACT_360)
    assert late_fee(0, 2400, 10, ACT_360) == 0


@pytest.mark.parametrize(
    ("fee", "net", "days", "apr"),
    [
        # 35.00 on 9,965.00 for 7 days: 3500/996500 * 365/7 * 100 = 18.3141… -> 18.31.
        (3_500, 996_500, 7, Decimal("18.31")),
        # 1/32 * 365/365 * 100 = 3.125: a tie on the hundredth rounds up (half-even: 3.12).
        (1, 32, 365, Decimal("3.13")),
        (0, 1_000, 30, Decimal("0.00")),
        (1_000, 1_000, 365, Decimal("100.00")),
    ],
)
def test_apr_equivalent_worked_examples(fee: int, net: int, days: int, apr: Decimal) -> None:
    result = apr_equivalent(fee, net, days)
    assert result == apr
    assert result.as_tuple().exponent == -2


def test_quote_worked_example_eur() -> None:
    quote = quote_price(
        face_minor=1_250_000,
        currency="EUR",
        advance_rate_bp=8000,
        annual_rate_bp=1800,
        day_count=ACT_360,
        days=7,
    )
    assert quote == Quote(
        currency="EUR",
        face_minor=1_250_000,
        advance_minor=1_000_000,
        fee_minor=3_500,
        net_minor=996_500,
        reserve_minor=250_000,
        days=7,
        annual_rate_bp=1800,
        advance_rate_bp=8000,
        day_count=ACT_360,
        apr=Decimal("18.31"),
    )


def test_quote_worked_example_jpy_has_no_minor_unit() -> None:
    # 1,000,000 JPY at 80 % = 800,000; fee 800,000 * 15 % * 45/365 = 14,794.52 -> 14,795;
    # apr = 14795/785205 * 365/45 * 100 = 15.2831… -> 15.28.
    quote = quote_price(
        face_minor=1_000_000,
        currency="JPY",
        advance_rate_bp=8000,
        annual_rate_bp=1500,
        day_count=ACT_365,
        days=45,
    )
    assert (quote.advance_minor, quote.fee_minor, quote.net_minor, quote.reserve_minor) == (
        800_000,
        14_795,
        785_205,
        200_000,
    )
    assert quote.apr == Decimal("15.28")


def test_quote_worked_example_kwd_has_three_decimals() -> None:
    # 12,345.678 KWD at 90 % = 11,111.110; fee 11,111.110 * 12 % * 60/360 = 222.222;
    # apr = 222222/10888888 * 365/60 * 100 = 12.4149… -> 12.41.
    quote = quote_price(
        face_minor=12_345_678,
        currency="KWD",
        advance_rate_bp=9000,
        annual_rate_bp=1200,
        day_count="ACT/360",  # type: ignore[arg-type]  # a model field's plain str is accepted
        days=60,
    )
    assert (quote.advance_minor, quote.fee_minor, quote.net_minor, quote.reserve_minor) == (
        11_111_110,
        222_222,
        10_888_888,
        1_234_568,
    )
    assert quote.apr == Decimal("12.41")
    assert quote.day_count is ACT_360


def test_quote_is_frozen() -> None:
    quote = quote_price(
        face_minor=100,
        currency="EUR",
        advance_rate_bp=8000,
        annual_rate_bp=0,
        day_count=ACT_360,
        days=1,
    )
    with pytest.raises(AttributeError):
        quote.fee_minor = 0  # type: ignore[misc]


INT_MINOR = "must be an integer (minor units), not"
FACE_RANGE = f"face_minor must be between 1 and {MAX} (minor units); got"
DAY_COUNTS = "day_count must be one of ACT/360, ACT/365; got"


@pytest.mark.parametrize(
    ("function", "arguments", "message"),
    [
        (advance_amount, (0, 8000), f"{FACE_RANGE} 0."),
        (advance_amount, (-5, 8000), f"{FACE_RANGE} -5."),
        (advance_amount, (MAX_MINOR_UNITS, 8000), f"{FACE_RANGE} {MAX_MINOR_UNITS}."),
        (advance_amount, (True, 8000), f"face_minor {INT_MINOR} bool."),
        (advance_amount, (10.0, 8000), f"face_minor {INT_MINOR} float."),
        (advance_amount, (Decimal(10), 8000), f"face_minor {INT_MINOR} Decimal."),
        (advance_amount, ("10", 8000), f"face_minor {INT_MINOR} str."),
        (advance_amount, (100, -1), "advance_rate_bp must be between 0 and 10000 (bp); got -1."),
        (
            advance_amount,
            (100, 10_001),
            "advance_rate_bp must be between 0 and 10000 (bp); got 10001.",
        ),
        (advance_amount, (100, 0.8), "advance_rate_bp must be an integer (bp), not float."),
        (discount_fee, (-1, 1800, 7, ACT_360), f"advance_minor must be between 0 and {MAX}"),
        (
            discount_fee,
            (100, 100_001, 7, ACT_360),
            "annual_rate_bp must be between 0 and 100000 (bp)",
        ),
        (discount_fee, (100, -1, 7, ACT_360), "annual_rate_bp must be between 0 and 100000 (bp)"),
        (discount_fee, (100, 1800, 0, ACT_360), "days must be at least 1; got 0."),
        (discount_fee, (100, 1800, -3, ACT_360), "days must be at least 1; got -3."),
        (discount_fee, (100, 1800, False, ACT_360), "days must be an integer, not bool."),
        (discount_fee, (100, 1800, 7, "30/360"), f"{DAY_COUNTS} '30/360'."),
        (discount_fee, (100, 1800, 7, 360), f"{DAY_COUNTS} 360."),
        (late_fee, (-1, 2400, 7, ACT_360), f"outstanding_minor must be between 0 and {MAX}"),
        (apr_equivalent, (-1, 100, 7), "fee_minor must be at least 0 (minor units); got -1."),
        (apr_equivalent, (1, 0, 7), "net_minor must be at least 1 (minor units); got 0."),
        (apr_equivalent, (1, 100, 0), "days must be at least 1; got 0."),
    ],
)
def test_nonsense_is_refused_with_a_clear_message(
    function: Callable[..., object], arguments: tuple[object, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        function(*arguments)


def _quote(**overrides: object) -> Quote:
    arguments: dict[str, object] = {
        "face_minor": 1_250_000,
        "currency": "EUR",
        "advance_rate_bp": 8000,
        "annual_rate_bp": 1800,
        "day_count": ACT_360,
        "days": 30,
    }
    return quote_price(**(arguments | overrides))  # type: ignore[arg-type]


def test_quote_refuses_an_unknown_currency() -> None:
    with pytest.raises(MoneyError, match=r"^'XXX' is not an ISO 4217 currency code\.$"):
        _quote(currency="XXX")
    with pytest.raises(ValueError, match="is not an ISO 4217"):
        _quote(currency="eur")


def test_quote_refuses_an_advance_of_nothing() -> None:
    with pytest.raises(ValueError, match="advances nothing"):
        _quote(advance_rate_bp=0)
    with pytest.raises(ValueError, match="advances nothing"):
        _quote(face_minor=1, advance_rate_bp=4999)


def test_fee_can_exceed_the_advance_over_long_tenors_and_the_quote_refuses() -> None:
    # "fee <= advance for days <= 3650 at rates <= 100 %" does not hold: 100 % a year for
    # 3650 days ACT/360 is 10.14 times the advance. It holds while rate * days <= one year.
    assert discount_fee(1_000_000, 10_000, 3650, ACT_360) == 10_138_889
    assert discount_fee(1_000_000, 10_000, 360, ACT_360) == 1_000_000
    with pytest.raises(ValueError, match="would consume the whole advance of 1000000"):
        _quote(advance_rate_bp=8000, annual_rate_bp=10_000, days=360)


@given(amounts, annual_rates, tenors, day_counts)
def test_fee_is_the_exact_product_rounded_half_up_once(
    advance: int, rate_bp: int, days: int, day_count: DayCount
) -> None:
    # Reference: Decimal with enough digits that the quotient is exact before the quantize.
    with localcontext() as context:
        context.prec = 200
        exact = Decimal(advance) * rate_bp * days / (10_000 * day_count.basis)
        expected = int(exact.quantize(Decimal(1), rounding=ROUNDING))
    fee = discount_fee(advance, rate_bp, days, day_count)
    assert type(fee) is int
    assert fee == expected
    assert fee >= 0
    assert late_fee(advance, rate_bp, days, day_count) == fee


@given(st.integers(min_value=0, max_value=MAX), st.integers(min_value=1, max_value=MAX), tenors)
def test_apr_is_the_exact_ratio_rounded_half_up_to_the_hundredth(
    fee: int, net: int, days: int
) -> None:
    with localcontext() as context:
        context.prec = 200
        exact = Decimal(fee) * 365 * 100 / (net * days)  # one division: exact or no tie
        expected = exact.quantize(Decimal("0.01"), rounding=ROUNDING)
    assert apr_equivalent(fee, net, days) == expected


@given(amounts, annual_rates, tenors, st.integers(min_value=0, max_value=400), day_counts)
def test_fee_never_decreases_with_more_days(
    advance: int, rate_bp: int, days: int, more: int, day_count: DayCount
) -> None:
    assert discount_fee(advance, rate_bp, days, day_count) <= discount_fee(
        advance, rate_bp, days + more, day_count
    )


@given(amounts, annual_rates, annual_rates, tenors, day_counts)
def test_fee_never_decreases_with_a_higher_rate(
    advance: int, rate_a: int, rate_b: int, days: int, day_count: DayCount
) -> None:
    low, high = sorted((rate_a, rate_b))
    assert discount_fee(advance, low, days, day_count) <= discount_fee(
        advance, high, days, day_count
    )


@given(amounts, annual_rates, tenors, day_counts)
def test_fee_never_exceeds_the_advance_within_one_year_of_interest(
    advance: int, rate_bp: int, days: int, day_count: DayCount
) -> None:
    # rate * days / basis <= 1: at most a year at 100 %, two years at 50 %, ...
    assume(rate_bp * days <= 10_000 * day_count.basis)
    assert discount_fee(advance, rate_bp, days, day_count) <= advance


@given(faces, advance_rates)
def test_advance_never_exceeds_face(face: int, rate_bp: int) -> None:
    advance = advance_amount(face, rate_bp)
    assert type(advance) is int
    assert 0 <= advance <= face


@given(
    faces, advance_rates, annual_rates, tenors, day_counts, st.sampled_from(["EUR", "JPY", "KWD"])
)
def test_quote_parts_add_up(
    face: int, advance_rate: int, annual_rate: int, days: int, day_count: DayCount, currency: str
) -> None:
    advance = advance_amount(face, advance_rate)
    assume(advance > 0 and discount_fee(advance, annual_rate, days, day_count) < advance)
    quote = quote_price(
        face_minor=face,
        currency=currency,
        advance_rate_bp=advance_rate,
        annual_rate_bp=annual_rate,
        day_count=day_count,
        days=days,
    )
    assert quote.advance_minor + quote.reserve_minor == quote.face_minor == face
    assert quote.net_minor + quote.fee_minor == quote.advance_minor
    assert quote.net_minor > 0 and quote.fee_minor >= 0 and quote.reserve_minor >= 0
    assert all(
        type(value) is int
        for value in (quote.advance_minor, quote.fee_minor, quote.net_minor, quote.reserve_minor)
    )
    assert quote.apr == apr_equivalent(quote.fee_minor, quote.net_minor, days) >= 0


# Mean tenor and the APR of an advance over several receivables (issue 8, item 10) -------------


@pytest.mark.parametrize(
    ("tenors", "mean"),
    [
        ([(1_000, 10), (1_000, 11)], Decimal("10.50")),  # banker's rounding would say 10
        ([(1_000, 12), (1_000, 13)], Decimal("12.50")),
        ([(1, 1), (2, 2)], Decimal("1.67")),  # 5 / 3 = 1.666… -> 1.67
        ([(400_000, 45)], Decimal("45.00")),
    ],
)
def test_mean_tenor_is_advance_weighted_in_decimal_half_up(
    tenors: list[tuple[int, int]], mean: Decimal
) -> None:
    assert mean_tenor(tenors) == mean


def test_apr_over_the_mean_tenor_rounds_once_at_the_end() -> None:
    # 3_500 fee on 996_500 net over a mean of 10.5 days: 365 x 3500 / 996500 / 10.5 = 12.209…%
    tenors = [(500_000, 10), (500_000, 11)]

    apr = apr_equivalent_mean(3_500, 996_500, tenors)

    assert apr == Decimal("12.21")
    assert apr != apr_equivalent(3_500, 996_500, 10)  # what rounding the tenor first gave
    assert apr_equivalent_mean(3_500, 996_500, [(1_000_000, 7)]) == apr_equivalent(
        3_500, 996_500, 7
    )


@given(
    st.lists(st.tuples(st.integers(1, 10**9), st.integers(1, 400)), min_size=1, max_size=8),
    st.integers(0, 10**8),
    st.integers(1, 10**9),
)
def test_apr_over_the_mean_tenor_is_the_exact_ratio_half_up(
    tenors: list[tuple[int, int]], fee: int, net: int
) -> None:
    weighted = sum(a * d for a, d in tenors)
    total = sum(a for a, _ in tenors)
    with localcontext() as ctx:
        ctx.prec = 200
        exact = Decimal(fee) * 365 * 100 * total / (Decimal(net) * weighted)
        expected = exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        mean = (Decimal(weighted) / total).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert apr_equivalent_mean(fee, net, tenors) == expected
    assert mean_tenor(tenors) == mean


def test_late_fee_cap_is_a_share_of_the_principal_half_up() -> None:
    assert late_fee_cap(400_000, 1000) == 40_000
    assert late_fee_cap(5, 1000) == 1  # 0.5 -> 1
    assert late_fee_cap(400_000, 0) == 0
    with pytest.raises(ValueError, match="cap_bp"):
        late_fee_cap(400_000, 10_001)


def _financing_modules() -> list[Path]:
    root = Path(__file__).resolve().parents[2] / "financing"
    return [p for p in root.rglob("*.py") if "migrations" not in p.parts]


def test_no_float_in_the_financing_package() -> None:
    """No float() call, float literal or round() builtin anywhere; no true division where
    money is computed (pricing and the services): money is integer minor units."""
    offences = []
    for path in _financing_modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        money_path = path.name == "pricing.py" or "services" in path.parts
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id in ("float", "round"):
                    offences.append(f"{path.name}:{node.lineno} {node.func.id}()")
            elif isinstance(node, ast.Constant) and isinstance(node.value, float):
                offences.append(f"{path.name}:{node.lineno} float literal")
            elif money_path and isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
                offences.append(f"{path.name}:{node.lineno} true division")
    assert offences == []
