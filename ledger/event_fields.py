"""The field types every event's data is made of: plain text and refs, e-mail, currency,
amounts in the currency's exact decimals, dates and UTC timestamps, each refused with one
message naming what is wrong.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from pydantic import BeforeValidator, ValidationInfo
from pydantic_core import PydanticCustomError

from ledger.money import CURRENCY_EXPONENTS, MoneyError, format_minor_units, parse_minor_units

# C0 and C1 controls, DEL, lone surrogates and the Unicode non-characters have no place in
# evidence a human will read; the surrogates cannot even be encoded as UTF-8 (nor a NUL stored
# in PostgreSQL text).
_FORBIDDEN_RANGES = (
    (0x00, 0x1F),
    (0x7F, 0x9F),
    (0xD800, 0xDFFF),
    (0xFDD0, 0xFDEF),
    (0xFFFE, 0xFFFF),
    (0x202A, 0x202E),  # and bidi overrides, which make text read other than it is
    (0x2066, 0x2069),
)
_FORBIDDEN_CLASS = "".join(rf"\u{low:04x}-\u{high:04x}" for low, high in _FORBIDDEN_RANGES)
FORBIDDEN_CHARS = re.compile(f"[{_FORBIDDEN_CLASS}]")
# The rules of every text field below as a regular expression that Python and ECMA-262 read
# alike, for the API schema: not blank, no forbidden character, no whitespace at either end.
TEXT_PATTERN = rf"^[^\s{_FORBIDDEN_CLASS}](?:[^{_FORBIDDEN_CLASS}]*[^\s{_FORBIDDEN_CLASS}])?$"
REF_MAX_LENGTH = 128
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIMESTAMP_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?P<offset>Z|[+-][0-9]{2}:[0-9]{2})?"
)
# Evidence from before e-invoicing existed or from the next century is a typo or an attack.
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2100, 12, 31)


def _plain_text(value: object, max_length: int) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Must be a string.")
    if not value.strip():
        raise PydanticCustomError("blank", "Must not be blank.")
    if len(value) > max_length:
        raise PydanticCustomError(
            "too_long", "Must be at most {max} characters.", {"max": max_length}
        )
    if value != value.strip():
        raise PydanticCustomError("whitespace", "Must not start or end with whitespace.")
    if FORBIDDEN_CHARS.search(value):
        raise PydanticCustomError(
            "forbidden_characters", "Must not contain control characters or lone surrogates."
        )
    return value


def text_type(max_length: int) -> Any:
    return BeforeValidator(lambda value: _plain_text(value, max_length))


def _email(value: object) -> str:
    # Django's own validator: the address is later stored on a Debtor and handed to the mailer,
    # both of which apply the same rule.
    address = _plain_text(value, 254)
    try:
        validate_email(address)
    except DjangoValidationError:
        raise PydanticCustomError("email", "Must be an e-mail address.") from None
    return address


def _currency(value: object) -> str:
    if not isinstance(value, str) or value not in CURRENCY_EXPONENTS:
        raise PydanticCustomError(
            "currency", "Must be an ISO 4217 currency code in capitals, such as EUR."
        )
    return value


def _amount(value: object, info: ValidationInfo, *, allow_zero: bool = False) -> str:
    """Check the amount against the event's currency and return its canonical spelling."""
    currency = (info.context or {}).get("currency")
    if not isinstance(value, str):
        raise PydanticCustomError("amount", 'Must be a decimal string such as "1234.50".')
    if not isinstance(currency, str) or currency not in CURRENCY_EXPONENTS:
        return value  # the currency field reports its own error; nothing to measure against
    try:
        minor = parse_minor_units(value, currency, allow_zero=allow_zero)
        return format_minor_units(minor, currency)
    except MoneyError as exc:
        raise PydanticCustomError("amount", str(exc)) from None


def _date(value: object) -> date:
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        raise PydanticCustomError("date_format", "Must be a date written YYYY-MM-DD.")
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError(
            "date_impossible", "'{value}' is not a real date.", {"value": value}
        ) from None
    if not EARLIEST_DATE <= parsed <= LATEST_DATE:
        raise PydanticCustomError("date_range", "Must lie between 2000-01-01 and 2100-12-31.")
    return parsed


def _timestamp(value: object) -> datetime:
    if not isinstance(value, str) or not (match := _TIMESTAMP_RE.fullmatch(value)):
        raise PydanticCustomError(
            "datetime_format", "Must be an RFC 3339 timestamp such as 2026-05-01T09:30:00Z."
        )
    if match["offset"] is None:
        raise PydanticCustomError(
            "datetime_naive", "Must include a UTC offset (Z or +hh:mm); naive times are ambiguous."
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError(
            "datetime_impossible", "'{value}' is not a real point in time.", {"value": value}
        ) from None
    in_utc = parsed.astimezone(UTC)
    if not EARLIEST_DATE <= in_utc.date() <= LATEST_DATE:
        raise PydanticCustomError("datetime_range", "Must lie between 2000 and 2100 (UTC).")
    return in_utc


Ref = Annotated[str, text_type(REF_MAX_LENGTH)]
Name = Annotated[str, text_type(200)]
Reason = Annotated[str, text_type(500)]
TaxId = Annotated[str, text_type(40)]
Email = Annotated[str, BeforeValidator(_email)]
Currency = Annotated[str, BeforeValidator(_currency)]
Amount = Annotated[str, BeforeValidator(_amount)]
# Fees and reserves Chainfin computes may come to nothing (a 0 % rate, a 100 % advance).
AmountOrZero = Annotated[
    str, BeforeValidator(lambda value, info: _amount(value, info, allow_zero=True))
]
IsoDate = Annotated[date, BeforeValidator(_date)]
Timestamp = Annotated[datetime, BeforeValidator(_timestamp)]
