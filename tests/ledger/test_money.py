"""Money at the edge: decimal strings in, integer minor units inside, and back again."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.money import (
    CURRENCY_EXPONENTS,
    MAX_MINOR_UNITS,
    Money,
    MoneyError,
    currency_exponent,
    format_minor_units,
    parse_minor_units,
)

NOT_PLAIN = "'{}' is not a plain positive decimal amount such as \"1234.50\"."
NOT_A_STRING = 'Amounts must be decimal strings such as "1234.50", not numbers.'


@pytest.mark.parametrize(("currency", "exponent"), [("JPY", 0), ("EUR", 2), ("KWD", 3), ("CLF", 4)])
def test_currency_exponent_follows_iso_4217(currency: str, exponent: int) -> None:
    assert currency_exponent(currency) == exponent


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("1", "JPY", 1),
        ("150000", "JPY", 150_000),
        ("999999999999999", "JPY", MAX_MINOR_UNITS - 1),
        ("0.01", "EUR", 1),
        ("1234.50", "EUR", 123_450),
        ("9999999999999.99", "EUR", MAX_MINOR_UNITS - 1),
        ("0.001", "KWD", 1),
        ("12.345", "KWD", 12_345),
        ("999999999999.999", "KWD", MAX_MINOR_UNITS - 1),
        ("0.0001", "CLF", 1),
        ("1.5000", "CLF", 15_000),
        ("99999999999.9999", "CLF", MAX_MINOR_UNITS - 1),
    ],
)
def test_canonical_amount_round_trips(amount: str, currency: str, minor: int) -> None:
    assert parse_minor_units(amount, currency) == minor
    assert format_minor_units(minor, currency) == amount


@pytest.mark.parametrize(
    ("amount", "currency", "canonical"),
    [
        ("12.5", "EUR", "12.50"),
        ("12", "EUR", "12.00"),
        ("7", "KWD", "7.000"),
        ("7.1", "KWD", "7.100"),
        ("1.5", "CLF", "1.5000"),
        ("0.5", "CLF", "0.5000"),
    ],
)
def test_short_spellings_normalise_to_the_currency_exponent(
    amount: str, currency: str, canonical: str
) -> None:
    assert format_minor_units(parse_minor_units(amount, currency), currency) == canonical


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [(-1, "EUR", "-0.01"), (-123_450, "EUR", "-1234.50"), (-5, "JPY", "-5"), (0, "KWD", "0.000")],
)
def test_format_renders_zero_and_negative_balances(minor: int, currency: str, text: str) -> None:
    # Parsing refuses these, but balances computed inside (credits, differences) can be <= 0.
    assert format_minor_units(minor, currency) == text


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        ("5.001", "EUR", "EUR has 2 decimal place(s); '5.001' has 3."),
        ("5.5", "JPY", "JPY has 0 decimal place(s); '5.5' has 1."),
        ("1.0000", "KWD", "KWD has 3 decimal place(s); '1.0000' has 4."),
        ("0.00001", "CLF", "CLF has 4 decimal place(s); '0.00001' has 5."),
        ("-5.00", "EUR", NOT_PLAIN.format("-5.00")),
        ("+1", "EUR", NOT_PLAIN.format("+1")),
        ("1e5", "EUR", NOT_PLAIN.format("1e5")),
        ("1E5", "EUR", NOT_PLAIN.format("1E5")),
        ("NaN", "EUR", NOT_PLAIN.format("NaN")),
        ("Infinity", "EUR", NOT_PLAIN.format("Infinity")),
        ("inf", "EUR", NOT_PLAIN.format("inf")),
        (" 12", "EUR", NOT_PLAIN.format(" 12")),
        ("12 ", "EUR", NOT_PLAIN.format("12 ")),
        ("1 000", "EUR", NOT_PLAIN.format("1 000")),
        ("12\n", "EUR", NOT_PLAIN.format("12\n")),
        ("\u0661\u0662", "EUR", NOT_PLAIN.format("\u0661\u0662")),  # Arabic-Indic "١٢"
        ("\uff11\uff12", "EUR", NOT_PLAIN.format("\uff11\uff12")),  # fullwidth digits one, two
        ("", "EUR", NOT_PLAIN.format("")),
        ("01", "EUR", NOT_PLAIN.format("01")),
        (".5", "EUR", NOT_PLAIN.format(".5")),
        ("5.", "EUR", NOT_PLAIN.format("5.")),
        ("1,000.00", "EUR", NOT_PLAIN.format("1,000.00")),
        ("1_000", "EUR", NOT_PLAIN.format("1_000")),
        ("0x10", "EUR", NOT_PLAIN.format("0x10")),
        ("0", "EUR", "The amount must be greater than zero."),
        ("0.00", "EUR", "The amount must be greater than zero."),
        ("0", "JPY", "The amount must be greater than zero."),
        ("0.0000", "CLF", "The amount must be greater than zero."),
        ("1000000000000000", "JPY", "'1000000000000000' is too large."),
        ("10000000000000.00", "EUR", "'10000000000000.00' is too large."),
        ("99999999999999999", "EUR", "'99999999999999999' is too large."),
        ("1000000000000.000", "KWD", "'1000000000000.000' is too large."),
        ("100000000000", "CLF", "'100000000000' is too large."),
    ],
)
def test_unacceptable_amounts_are_refused_with_a_clear_message(
    amount: str, currency: str, message: str
) -> None:
    with pytest.raises(MoneyError) as refused:
        parse_minor_units(amount, currency)
    assert str(refused.value) == message


def test_an_absurdly_long_amount_is_refused_and_echoed_only_in_part() -> None:
    amount = "9" * 10_000
    with pytest.raises(MoneyError) as refused:
        parse_minor_units(amount, "EUR")
    assert str(refused.value) == f"'{'9' * 40}' is too large."


@pytest.mark.parametrize("amount", [12.5, 12, 0, True, None, b"12"])
def test_amounts_that_are_not_strings_are_refused(amount: object) -> None:
    with pytest.raises(MoneyError) as refused:
        parse_minor_units(amount, "EUR")  # type: ignore[arg-type]
    assert str(refused.value) == NOT_A_STRING


@pytest.mark.parametrize("currency", ["XXX", "eur", "EURO", "XAU", "XTS", "", " EUR", "978"])
def test_unknown_currencies_are_refused(currency: str) -> None:
    with pytest.raises(MoneyError) as refused:
        parse_minor_units("1", currency)
    assert str(refused.value) == f"'{currency}' is not an ISO 4217 currency code."


@pytest.mark.parametrize("currency", [None, 978, ["EUR"]])
def test_currencies_that_are_not_strings_are_refused(currency: object) -> None:
    with pytest.raises(MoneyError, match="is not an ISO 4217 currency code"):
        currency_exponent(currency)  # type: ignore[arg-type]


def test_money_adds_and_subtracts_within_one_currency() -> None:
    a, b = Money.parse("10.50", "EUR"), Money.parse("0.75", "EUR")
    assert a + b == Money(1125, "EUR")
    assert a - b == Money(975, "EUR")
    assert str(b - a) == "-9.75 EUR"


@pytest.mark.parametrize(
    ("left", "right", "message"),
    [
        (Money(100, "EUR"), Money(100, "USD"), "Cannot combine EUR with USD."),
        (Money(100, "JPY"), Money(100, "KWD"), "Cannot combine JPY with KWD."),
    ],
)
def test_money_refuses_to_mix_currencies(left: Money, right: Money, message: str) -> None:
    with pytest.raises(MoneyError) as refused_add:
        left + right
    with pytest.raises(MoneyError) as refused_sub:
        left - right
    assert str(refused_add.value) == str(refused_sub.value) == message


@pytest.mark.parametrize("minor", [12.5, 12.0, True, "1250"])
def test_money_holds_integer_minor_units_only(minor: object) -> None:
    with pytest.raises(MoneyError, match="integer minor units only"):
        Money(minor, "EUR")  # type: ignore[arg-type]


def test_money_refuses_unknown_currency() -> None:
    with pytest.raises(MoneyError, match="'XAU' is not an ISO 4217 currency code"):
        Money(1, "XAU")


def test_money_renders_with_its_currency() -> None:
    assert str(Money.parse("1.5", "CLF")) == "1.5000 CLF"
    assert str(Money.parse("150000", "JPY")) == "150000 JPY"


@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [
        (123_456, "EUR", "1,234.56 EUR"),
        (-123_456, "EUR", "-1,234.56 EUR"),
        (0, "EUR", "0.00 EUR"),
        (5, "EUR", "0.05 EUR"),
        (99_999, "EUR", "999.99 EUR"),
        (123_456_789_01, "EUR", "123,456,789.01 EUR"),
        (150_000, "JPY", "150,000 JPY"),
        (1_234_567, "KWD", "1,234.567 KWD"),
        (None, "EUR", "—"),
        (1250, "XAU", "1,250 (minor units) XAU"),  # stored, but not money this module knows
    ],
)
def test_money_display_separates_thousands_with_the_currency_decimals(
    minor: int | None, currency: str, shown: str
) -> None:
    assert Money.display(minor, currency) == shown


currencies = st.sampled_from(sorted(CURRENCY_EXPONENTS))


@settings(max_examples=200)
@given(minor=st.integers(min_value=1, max_value=MAX_MINOR_UNITS - 1), currency=currencies)
def test_every_amount_survives_format_then_parse(minor: int, currency: str) -> None:
    text = format_minor_units(minor, currency)
    assert parse_minor_units(text, currency) == minor
    exponent = CURRENCY_EXPONENTS[currency]
    assert ("." in text) == (exponent > 0)
    assert len(text.partition(".")[2]) == exponent


@settings(max_examples=100)
@given(minor=st.integers(min_value=1, max_value=MAX_MINOR_UNITS - 1), currency=currencies)
def test_one_decimal_more_than_the_currency_has_is_always_refused(
    minor: int, currency: str
) -> None:
    text = format_minor_units(minor, currency)
    longer = text + "0" if "." in text else text + ".0"
    with pytest.raises(MoneyError, match="decimal place"):
        parse_minor_units(longer, currency)


@settings(max_examples=100)
@given(minor=st.integers(min_value=MAX_MINOR_UNITS, max_value=10**30), currency=currencies)
def test_magnitudes_from_the_limit_up_are_refused(minor: int, currency: str) -> None:
    with pytest.raises(MoneyError, match="is too large"):
        parse_minor_units(format_minor_units(minor, currency), currency)
