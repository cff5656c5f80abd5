"""Money primitives: integer minor units plus an ISO 4217 currency code.

Amounts never exist as floats. At the edges they are decimal strings ("1234.50") with no more
decimals than the currency's ISO 4217 exponent; inside they are ``int`` minor units.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ISO 4217 List One (active codes), grouped by minor-unit exponent. Funds, precious metals and
# the testing/no-currency codes (XAU, XTS, XXX, ...) have no exponent and are not money here.
_EXPONENT_0 = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_EXPONENT_3 = "BHD IQD JOD KWD LYD OMR TND"
_EXPONENT_4 = "CLF UYW"
_EXPONENT_2 = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP "
    "BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD "
    "FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD "
    "KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD "
    "NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP "
    "SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED "
    "VES WST XCD XCG YER ZAR ZMW ZWG"
)
CURRENCY_EXPONENTS: dict[str, int] = {
    code: exponent
    for exponent, codes in ((0, _EXPONENT_0), (2, _EXPONENT_2), (3, _EXPONENT_3), (4, _EXPONENT_4))
    for code in codes.split()
}

# Ten trillion major units of a 2-decimal currency; far beyond any receivable, and below 2**53
# so the figure survives a JavaScript client.
MAX_MINOR_UNITS = 10**15

# ASCII digits only: `\d` would accept Arabic-Indic and other Unicode digits.
_DECIMAL_RE = re.compile(r"(?P<whole>0|[1-9][0-9]*)(?:\.(?P<fraction>[0-9]+))?")


class MoneyError(ValueError):
    """An amount or currency that is not acceptable money."""


def currency_exponent(currency: str) -> int:
    """Return the ISO 4217 minor-unit exponent of ``currency``.

    :raises MoneyError: the code is not an active ISO 4217 currency.
    """
    try:
        return CURRENCY_EXPONENTS[currency]
    except (KeyError, TypeError):
        raise MoneyError(f"'{currency}' is not an ISO 4217 currency code.") from None


def parse_minor_units(amount: str, currency: str, *, allow_zero: bool = False) -> int:
    """Parse a positive decimal string into integer minor units of ``currency``.

    Accepts "12", "12.5" and "12.50" for EUR; refuses more decimals than the currency has,
    signs, exponents, whitespace, NaN/Infinity, Unicode digits, absurd magnitudes and, unless
    ``allow_zero`` (a fee that came to nothing), zero.

    :raises MoneyError: with a message fit to show the sender.
    """
    exponent = currency_exponent(currency)
    if not isinstance(amount, str):
        raise MoneyError('Amounts must be decimal strings such as "1234.50", not numbers.')
    match = _DECIMAL_RE.fullmatch(amount)
    if match is None:
        raise MoneyError(
            f"'{amount[:40]}' is not a plain positive decimal amount such as \"1234.50\"."
        )
    fraction = match["fraction"] or ""
    if len(fraction) > exponent:
        raise MoneyError(
            f"{currency} has {exponent} decimal place(s); '{amount[:40]}' has {len(fraction)}."
        )
    if len(match["whole"]) > 16:  # before int(): a million-digit string is a slow parse
        raise MoneyError(f"'{amount[:40]}' is too large.")
    whole: str = match["whole"]
    minor: int = int(whole) * 10**exponent + int(fraction.ljust(exponent, "0") or 0)
    if minor == 0 and not allow_zero:
        raise MoneyError("The amount must be greater than zero.")
    if minor >= MAX_MINOR_UNITS:
        raise MoneyError(f"'{amount}' is too large.")
    return minor


def format_minor_units(minor: int, currency: str) -> str:
    """Render integer minor units as the canonical decimal string ("1234.50")."""
    exponent = currency_exponent(currency)
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**exponent)
    if exponent == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:0{exponent}d}"


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: integer minor units of one ISO 4217 currency."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        currency_exponent(self.currency)
        if isinstance(self.minor, bool) or not isinstance(self.minor, int):
            raise MoneyError("Money holds integer minor units only.")

    @classmethod
    def parse(cls, amount: str, currency: str) -> Money:
        return cls(parse_minor_units(amount, currency), currency)

    def __str__(self) -> str:
        return f"{format_minor_units(self.minor, self.currency)} {self.currency}"

    @classmethod
    def display(cls, minor: int | None, currency: str) -> str:
        """Show a stored amount to a person: "1,234.50 EUR", or "—" when there is none.

        The one formatter for people: thousands separated by commas, the currency's own number
        of decimals. ``str(Money)`` stays the canonical "1234.50 EUR" that messages and the API
        use. A stored currency this module does not know (a code since withdrawn from ISO 4217)
        shows its minor units as stored, so that one odd row does not break a whole page.
        """
        if minor is None:
            return "—"
        try:
            exponent = currency_exponent(currency)
        except MoneyError:
            return f"{minor:,} (minor units) {currency}"
        sign = "-" if minor < 0 else ""
        whole, fraction = divmod(abs(minor), 10**exponent)
        decimals = f".{fraction:0{exponent}d}" if exponent else ""
        return f"{sign}{whole:,}{decimals} {currency}"

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor - other.minor, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"Cannot combine {self.currency} with {other.currency}.")
