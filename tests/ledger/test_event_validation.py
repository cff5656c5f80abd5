"""Event validation: bad input is refused field by field, and nothing reaches the ledger.

Every refusal case goes the way a request goes, ``event_parse`` and then ``entry_append``, so a
validator that wrongly lets an input through makes the append write, and the test fails twice:
no EventInvalid, and a changed ledger. The merchant starts with an order and an invoice on its
chain, so "nothing changed" compares real rows, not empty tables.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from django.conf import settings as django_settings

from ledger.events import ValidEvent, event_parse, format_timestamp
from ledger.exceptions import EventConflict, EventInvalid
from ledger.models import Chain, Entry, Invoice, Order, Payout, Shipment
from ledger.services import NewEntry, entries_append, entry_append
from merchants.models import Merchant

SOURCE = "acme-marketplace"
MISSING = object()  # marks a field to delete

REQUIRED = "This field is required."
UNKNOWN_FIELD = "Unknown field."
NOT_A_STRING = "Must be a string."
BLANK = "Must not be blank."
WHITESPACE = "Must not start or end with whitespace."
FORBIDDEN = "Must not contain control characters or lone surrogates."
NOT_AN_OBJECT = "Input should be a valid dictionary"
AMOUNT_TYPE = 'Must be a decimal string such as "1234.50".'
ZERO = "The amount must be greater than zero."
CURRENCY = "Must be an ISO 4217 currency code in capitals, such as EUR."
TIMESTAMP_FORMAT = "Must be an RFC 3339 timestamp such as 2026-05-01T09:30:00Z."
NAIVE = "Must include a UTC offset (Z or +hh:mm); naive times are ambiguous."
TIMESTAMP_RANGE = "Must lie between 2000 and 2100 (UTC)."
DATE_FORMAT = "Must be a date written YYYY-MM-DD."
DATE_RANGE = "Must lie between 2000-01-01 and 2100-12-31."
UNKNOWN_TYPE = (
    "Unknown event type; expected one of invoice.credited, invoice.issued, invoice.linked,"
    " order.cancelled, order.placed, payout.settled, shipment.delivered, shipment.dispatched,"
    " shipment.returned."
)
FUTURE = "Lies in the future; evidence records the past."


def not_plain(amount: str) -> str:
    return f"'{amount}' is not a plain positive decimal amount such as \"1234.50\"."


def too_long(limit: int) -> str:
    return f"Must be at most {limit} characters."


# One valid event per type, spelled the way senders spell them (short amounts, offsets); the
# refs ending in -SEED are on the merchant's chain before each test.
VALID: dict[str, dict[str, Any]] = {
    "order.placed": {
        "type": "order.placed",
        "ref": "ORD-NEW",
        "occurred_at": "2026-10-01T10:00:00+01:00",
        "data": {
            "currency": "EUR",
            "amount": "12.5",
            "buyer": {"id": "B-1", "name": "Zoë Müller & Søn"},
        },
    },
    "invoice.issued": {
        "type": "invoice.issued",
        "ref": "INV-NEW",
        "occurred_at": "2026-10-01T18:00:00+09:00",
        "data": {
            "currency": "JPY",
            "amount": "150000",
            "order_ref": "ORD-NEW",
            "issue_date": "2026-10-01",
            "due_date": "2026-10-31",
            "debtor": {
                "kind": "business",
                "name": "東京商事",
                "tax_id": "T1234567890123",
                "country": "JP",
            },
            "supplier_tax_id": "DE123456789",
        },
    },
    "invoice.credited": {
        "type": "invoice.credited",
        "ref": "CN-NEW",
        "occurred_at": "2026-10-02T09:00:00.5Z",
        "data": {
            "currency": "EUR",
            "amount": "19",
            "invoice_ref": "INV-SEED",
            "issue_date": "2026-10-02",
            "reason": "Retour — beschädigt",
        },
    },
    "shipment.dispatched": {
        "type": "shipment.dispatched",
        "ref": "SHP-NEW",
        "occurred_at": "2026-10-02T10:00:00-05:00",
        "data": {"order_ref": "ORD-NEW", "carrier": "DHL Express 🚚", "tracking_number": "JD0146"},
    },
    "shipment.delivered": {
        "type": "shipment.delivered",
        "ref": "SHP-NEW",
        "occurred_at": "2026-10-03T14:00:00+02:00",
        "data": {"order_ref": "ORD-NEW"},
    },
    "shipment.returned": {
        "type": "shipment.returned",
        "ref": "SHP-NEW",
        "occurred_at": "2026-10-04T23:30:00-02:30",
        "data": {"order_ref": "ORD-NEW", "reason": "Annahme verweigert"},
    },
    "order.cancelled": {
        "type": "order.cancelled",
        "ref": "ORD-SEED",
        "occurred_at": "2026-10-05T07:00:00Z",
        "data": {"reason": "Kunde storniert \u2013 Lieferverzug 📦"},
    },
    "payout.settled": {
        "type": "payout.settled",
        "ref": "PO-NEW",
        "occurred_at": "2026-10-05T06:00:00Z",
        "data": {
            "currency": "KWD",
            "amount": "1.5",
            "settled_on": "2026-10-05",
            "lines": [
                {"invoice_ref": "INV-SEED", "amount": "1"},
                {"invoice_ref": "INV-X", "amount": "0.5"},
            ],
        },
    },
}

# What event_parse makes of them: (occurred_at as stored, data as stored).
NORMALISED: dict[str, tuple[str, dict[str, Any]]] = {
    "order.placed": (
        "2026-10-01T09:00:00.000000Z",
        {"currency": "EUR", "amount": "12.50", "buyer": {"id": "B-1", "name": "Zoë Müller & Søn"}},
    ),
    "invoice.issued": ("2026-10-01T09:00:00.000000Z", VALID["invoice.issued"]["data"]),
    "invoice.credited": (
        "2026-10-02T09:00:00.500000Z",
        {**VALID["invoice.credited"]["data"], "amount": "19.00"},
    ),
    "shipment.dispatched": ("2026-10-02T15:00:00.000000Z", VALID["shipment.dispatched"]["data"]),
    "shipment.delivered": ("2026-10-03T12:00:00.000000Z", VALID["shipment.delivered"]["data"]),
    "shipment.returned": ("2026-10-05T02:00:00.000000Z", VALID["shipment.returned"]["data"]),
    "order.cancelled": ("2026-10-05T07:00:00.000000Z", VALID["order.cancelled"]["data"]),
    "payout.settled": (
        "2026-10-05T06:00:00.000000Z",
        {
            "currency": "KWD",
            "amount": "1.500",
            "settled_on": "2026-10-05",
            "lines": [
                {"invoice_ref": "INV-SEED", "amount": "1.000"},
                {"invoice_ref": "INV-X", "amount": "0.500"},
            ],
        },
    ),
}


def event(kind: str, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of VALID[kind] with ``changes`` applied, each keyed by an RFC 6901 pointer."""
    raw = copy.deepcopy(VALID[kind])
    for pointer, value in (changes or {}).items():
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
        target: Any = raw
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        key: Any = int(last) if isinstance(target, list) else last
        if value is MISSING:
            del target[key]
        else:
            target[key] = value
    return raw


def ledger_state() -> dict[str, list[Any]]:
    """Everything an append could touch: entries, chain heads and every projection row."""
    state: dict[str, list[Any]] = {
        "entries": list(Entry.objects.order_by("pk").values_list("pk", "hash")),
        "chains": list(Chain.objects.order_by("pk").values_list("pk", "head_seq", "head_hash")),
    }
    for model in (Order, Invoice, Shipment, Payout):
        state[model.__name__] = list(model.objects.order_by("pk").values())
    return state


@pytest.fixture
def merchant(make_merchant: Callable[..., Merchant]) -> Merchant:
    """The supplier the events below name in ``supplier_tax_id``: an invoice's is its merchant."""
    return make_merchant(tax_id="DE123456789")


@pytest.fixture
def seeded(merchant: Merchant, now: datetime) -> Merchant:
    """The merchant with order ORD-SEED (EUR 100.00) and invoice INV-SEED (EUR 119.00)."""
    order = event("order.placed", {"/ref": "ORD-SEED", "/data/amount": "100.00"})
    invoice = event(
        "invoice.issued",
        {
            "/ref": "INV-SEED",
            "/data/currency": "EUR",
            "/data/amount": "119.00",
            "/data/order_ref": "ORD-SEED",
        },
    )
    entries_append(
        source=SOURCE,
        entries=[
            NewEntry(merchant_id=merchant.pk, event=event_parse(raw)) for raw in (order, invoice)
        ],
        now=now,
    )
    return merchant


def assert_refused(
    raw: object, expected: list[tuple[str, str]], merchant: Merchant, now: datetime
) -> None:
    before = ledger_state()
    assert before["entries"], "the merchant's chain should hold the seed entries"
    with pytest.raises(EventInvalid) as refused:
        entry_append(source=SOURCE, merchant_id=merchant.pk, event=event_parse(raw), now=now)
    assert [(error.pointer, error.message) for error in refused.value.errors] == expected
    assert ledger_state() == before


# ------------------------------------------------------------------------------------------
# Refusals, one table per class of bad input
# ------------------------------------------------------------------------------------------

AMOUNT_CASES = [
    pytest.param({"/data/amount": "NaN"}, not_plain("NaN"), id="NaN"),
    pytest.param({"/data/amount": "Infinity"}, not_plain("Infinity"), id="Infinity"),
    pytest.param({"/data/amount": "1e3"}, not_plain("1e3"), id="exponent"),
    pytest.param(
        {"/data/amount": "\u0661\u0662"}, not_plain("\u0661\u0662"), id="arabic-indic-digits"
    ),
    pytest.param(
        {"/data/amount": "\uff11\uff12"}, not_plain("\uff11\uff12"), id="fullwidth-digits"
    ),
    pytest.param({"/data/amount": "-5.00"}, not_plain("-5.00"), id="negative"),
    pytest.param({"/data/amount": "+5.00"}, not_plain("+5.00"), id="plus-sign"),
    pytest.param({"/data/amount": " 5.00"}, not_plain(" 5.00"), id="whitespace"),
    pytest.param({"/data/amount": "1,000.00"}, not_plain("1,000.00"), id="thousands-separator"),
    pytest.param({"/data/amount": ""}, not_plain(""), id="empty"),
    pytest.param(
        {"/data/amount": "5.001"}, "EUR has 2 decimal place(s); '5.001' has 3.", id="EUR-3-decimals"
    ),
    pytest.param(
        {"/data/currency": "JPY", "/data/amount": "5.5"},
        "JPY has 0 decimal place(s); '5.5' has 1.",
        id="JPY-decimals",
    ),
    pytest.param(
        {"/data/amount": "99999999999999999"}, "'99999999999999999' is too large.", id="absurd"
    ),
    pytest.param({"/data/amount": "0"}, ZERO, id="zero"),
    pytest.param({"/data/amount": "0.00"}, ZERO, id="zero-with-decimals"),
    pytest.param({"/data/amount": 12.5}, AMOUNT_TYPE, id="float"),
    pytest.param({"/data/amount": 0}, AMOUNT_TYPE, id="int-zero"),
    pytest.param({"/data/amount": 1250}, AMOUNT_TYPE, id="int"),
    pytest.param({"/data/amount": None}, AMOUNT_TYPE, id="null"),
    pytest.param({"/data/amount": True}, AMOUNT_TYPE, id="bool"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("changes", "message"), AMOUNT_CASES)
def test_bad_amount_is_refused(
    changes: dict[str, Any], message: str, seeded: Merchant, now: datetime
) -> None:
    assert_refused(event("order.placed", changes), [("/data/amount", message)], seeded, now)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "pointer", "message"),
    [
        pytest.param(
            {"/data/lines/1/amount": "0.0005"},
            "/data/lines/1/amount",
            "KWD has 3 decimal place(s); '0.0005' has 4.",
            id="payout-line",
        ),
        pytest.param(
            {"/data/lines/0/amount": 1},
            "/data/lines/0/amount",
            AMOUNT_TYPE,
            id="payout-line-number",
        ),
        pytest.param({"/data/amount": "1e3"}, "/data/amount", not_plain("1e3"), id="payout-total"),
    ],
)
def test_bad_payout_amount_is_refused_where_it_sits(
    changes: dict[str, Any], pointer: str, message: str, seeded: Merchant, now: datetime
) -> None:
    assert_refused(event("payout.settled", changes), [(pointer, message)], seeded, now)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "currency"),
    [
        pytest.param("order.placed", "XXX", id="no-currency-code"),
        pytest.param("order.placed", "XAU", id="gold"),
        pytest.param("order.placed", "eur", id="lowercase"),
        pytest.param("order.placed", "EURO", id="four-letters"),
        pytest.param("order.placed", "", id="empty"),
        pytest.param("order.placed", 978, id="numeric-code"),
        pytest.param("order.placed", None, id="null"),
        pytest.param("invoice.credited", "usd", id="credit-lowercase"),
        pytest.param("payout.settled", "XTS", id="payout-testing-code"),
    ],
)
def test_bad_currency_is_refused(
    kind: str, currency: object, seeded: Merchant, now: datetime
) -> None:
    # The amount cannot be measured without a currency, so the currency error stands alone.
    assert_refused(
        event(kind, {"/data/currency": currency}), [("/data/currency", CURRENCY)], seeded, now
    )


@pytest.mark.django_db
def test_missing_currency_is_required(seeded: Merchant, now: datetime) -> None:
    raw = event("order.placed", {"/data/currency": MISSING})
    assert_refused(raw, [("/data/currency", REQUIRED)], seeded, now)


OCCURRED_AT_CASES = [
    pytest.param("2026-01-01T10:00:00", NAIVE, id="naive"),
    pytest.param("2026-01-01T10:00:00.123456", NAIVE, id="naive-with-fraction"),
    pytest.param(
        "2026-02-30T10:00:00Z", "'2026-02-30T10:00:00Z' is not a real point in time.", id="feb-30"
    ),
    pytest.param(
        "2026-13-01T00:00:00Z", "'2026-13-01T00:00:00Z' is not a real point in time.", id="month-13"
    ),
    pytest.param(
        "2026-01-01T24:00:00Z", "'2026-01-01T24:00:00Z' is not a real point in time.", id="hour-24"
    ),
    pytest.param(
        "2026-01-01T10:00:00+25:00",
        "'2026-01-01T10:00:00+25:00' is not a real point in time.",
        id="offset-25h",
    ),
    pytest.param("1999-12-31T23:59:59Z", TIMESTAMP_RANGE, id="year-1999"),
    pytest.param("2101-01-01T00:00:00Z", TIMESTAMP_RANGE, id="year-2101"),
    pytest.param("01/02/2026", TIMESTAMP_FORMAT, id="not-iso"),
    pytest.param("2026-10-01 09:00:00Z", TIMESTAMP_FORMAT, id="space-for-T"),
    pytest.param("2026-10-01T09:00:00z", TIMESTAMP_FORMAT, id="lowercase-z"),
    pytest.param("2026-10-01T09:00:00.1234567Z", TIMESTAMP_FORMAT, id="nanoseconds"),
    pytest.param("2026-10-01", TIMESTAMP_FORMAT, id="date-only"),
    pytest.param("", TIMESTAMP_FORMAT, id="empty"),
    pytest.param(1790000000, TIMESTAMP_FORMAT, id="unix-seconds"),
    pytest.param(1790000000000, TIMESTAMP_FORMAT, id="unix-milliseconds"),
    pytest.param(1790000000.5, TIMESTAMP_FORMAT, id="unix-float"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("occurred_at", "message"), OCCURRED_AT_CASES)
def test_bad_occurred_at_is_refused(
    occurred_at: object, message: str, seeded: Merchant, now: datetime
) -> None:
    raw = event("order.placed", {"/occurred_at": occurred_at})
    assert_refused(raw, [("/occurred_at", message)], seeded, now)


DATE_CASES = [
    pytest.param(
        "invoice.issued",
        "/data/issue_date",
        "2026-02-30",
        "'2026-02-30' is not a real date.",
        id="feb-30",
    ),
    pytest.param(
        "invoice.issued",
        "/data/issue_date",
        "2026-13-01",
        "'2026-13-01' is not a real date.",
        id="month-13",
    ),
    pytest.param("invoice.issued", "/data/issue_date", "1999-12-31", DATE_RANGE, id="year-1999"),
    pytest.param("invoice.issued", "/data/due_date", "2101-01-01", DATE_RANGE, id="year-2101"),
    pytest.param("invoice.issued", "/data/issue_date", "01/02/2026", DATE_FORMAT, id="not-iso"),
    pytest.param(
        "invoice.issued", "/data/issue_date", "2026-1-5", DATE_FORMAT, id="no-zero-padding"
    ),
    pytest.param(
        "invoice.issued", "/data/due_date", "2026-10-31T00:00:00Z", DATE_FORMAT, id="timestamp"
    ),
    pytest.param("invoice.issued", "/data/due_date", 1790000000, DATE_FORMAT, id="unix-seconds"),
    pytest.param(
        "invoice.credited", "/data/issue_date", "2026/10/02", DATE_FORMAT, id="credit-slashes"
    ),
    pytest.param(
        "payout.settled", "/data/settled_on", "05.10.2026", DATE_FORMAT, id="payout-german"
    ),
    pytest.param("payout.settled", "/data/settled_on", 20261005, DATE_FORMAT, id="payout-number"),
    pytest.param("payout.settled", "/data/settled_on", None, DATE_FORMAT, id="payout-null"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "pointer", "value", "message"), DATE_CASES)
def test_bad_date_is_refused(
    kind: str, pointer: str, value: object, message: str, seeded: Merchant, now: datetime
) -> None:
    assert_refused(event(kind, {pointer: value}), [(pointer, message)], seeded, now)


STRING_CASES = [
    pytest.param("order.placed", "/ref", "\x00", FORBIDDEN, id="nul"),
    pytest.param("order.placed", "/ref", "ORD\x00-1", FORBIDDEN, id="nul-inside"),
    pytest.param("order.placed", "/ref", "ORD-\x1b[31m", FORBIDDEN, id="ansi-escape"),
    pytest.param("order.placed", "/ref", "ORD-\x7f", FORBIDDEN, id="del"),
    pytest.param("order.placed", "/ref", "ORD-\x9b1", FORBIDDEN, id="c1-control"),
    pytest.param("order.placed", "/ref", "\ud800", FORBIDDEN, id="lone-surrogate"),
    pytest.param("order.placed", "/ref", "ORD-\udc00-1", FORBIDDEN, id="lone-low-surrogate-inside"),
    pytest.param("order.placed", "/ref", "ORD-\ufffe", FORBIDDEN, id="non-character"),
    pytest.param("order.placed", "/ref", " ORD-1", WHITESPACE, id="leading-space"),
    pytest.param("order.placed", "/ref", "ORD-1 ", WHITESPACE, id="trailing-space"),
    pytest.param("order.placed", "/ref", "ORD-1\n", WHITESPACE, id="trailing-newline"),
    pytest.param("order.placed", "/ref", "\u00a0ORD-1", WHITESPACE, id="leading-nbsp"),
    pytest.param("order.placed", "/ref", "x" * 129, too_long(128), id="too-long"),
    pytest.param("order.placed", "/ref", "", BLANK, id="empty"),
    pytest.param("order.placed", "/ref", "   ", BLANK, id="spaces"),
    pytest.param("order.placed", "/ref", "\t\n", BLANK, id="tab-newline"),
    pytest.param("order.placed", "/ref", 42, NOT_A_STRING, id="number"),
    pytest.param("order.placed", "/ref", None, NOT_A_STRING, id="null"),
    pytest.param("order.placed", "/ref", ["ORD-1"], NOT_A_STRING, id="list"),
    pytest.param("order.placed", "/type", 7, NOT_A_STRING, id="type-number"),
    pytest.param("order.placed", "/data/buyer/name", "Zoë\ud800", FORBIDDEN, id="buyer-surrogate"),
    pytest.param("order.placed", "/data/buyer/name", "x" * 201, too_long(200), id="buyer-too-long"),
    pytest.param("order.placed", "/data/buyer/id", "", BLANK, id="buyer-id-blank"),
    pytest.param("order.cancelled", "/data/reason", "x" * 501, too_long(500), id="reason-too-long"),
    pytest.param("order.cancelled", "/data/reason", "late\x00", FORBIDDEN, id="reason-nul"),
    pytest.param("invoice.issued", "/data/debtor/name", " 東京商事", WHITESPACE, id="debtor-space"),
    pytest.param(
        "invoice.issued", "/data/debtor/tax_id", "x" * 41, too_long(40), id="tax-id-too-long"
    ),
    pytest.param("invoice.issued", "/data/order_ref", True, NOT_A_STRING, id="order-ref-bool"),
    pytest.param("shipment.dispatched", "/data/carrier", "DHL\t", WHITESPACE, id="carrier-tab"),
    pytest.param("shipment.delivered", "/data/order_ref", "", BLANK, id="order-ref-blank"),
    pytest.param("payout.settled", "/data/lines/0/invoice_ref", "\x07", FORBIDDEN, id="line-bell"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "pointer", "value", "message"), STRING_CASES)
def test_bad_text_is_refused(
    kind: str, pointer: str, value: object, message: str, seeded: Merchant, now: datetime
) -> None:
    assert_refused(event(kind, {pointer: value}), [(pointer, message)], seeded, now)


@pytest.mark.parametrize(
    ("pointer", "limit"), [("/ref", 128), ("/data/buyer/name", 200), ("/data/buyer/id", 128)]
)
def test_text_of_exactly_the_limit_is_accepted(pointer: str, limit: int) -> None:
    parsed = event_parse(event("order.placed", {pointer: "ü" * limit}))
    fields = {
        "/ref": parsed.ref,
        "/data/buyer/name": parsed.data["buyer"]["name"],
        "/data/buyer/id": parsed.data["buyer"]["id"],
    }
    assert fields[pointer] == "ü" * limit  # characters, not UTF-8 bytes, are counted


STRUCTURE_CASES = [
    pytest.param(
        "order.placed", {"/type": "order.shipped"}, [("/type", UNKNOWN_TYPE)], id="unknown-type"
    ),
    pytest.param(
        "order.placed", {"/type": "ORDER.PLACED"}, [("/type", UNKNOWN_TYPE)], id="type-capitals"
    ),
    pytest.param(
        "order.placed", {"/merchant": "mer_x"}, [("/merchant", UNKNOWN_FIELD)], id="envelope-extra"
    ),
    pytest.param(
        "order.placed",
        {"/data/discount": "5.00"},
        [("/data/discount", UNKNOWN_FIELD)],
        id="data-extra",
    ),
    pytest.param(
        "invoice.issued",
        {"/data/debtor/iban": "DE89"},
        [("/data/debtor/iban", UNKNOWN_FIELD)],
        id="nested-extra",
    ),
    pytest.param(
        "payout.settled",
        {"/data/lines/0/note": "x"},
        [("/data/lines/0/note", UNKNOWN_FIELD)],
        id="line-extra",
    ),
    pytest.param(
        "order.placed",
        {"/data/a~1b": 1, "/data/t~0x": 2},
        [("/data/a~1b", UNKNOWN_FIELD), ("/data/t~0x", UNKNOWN_FIELD)],
        id="pointer-escaping",
    ),
    pytest.param("order.placed", {"/ref": MISSING}, [("/ref", REQUIRED)], id="missing-ref"),
    pytest.param(
        "order.placed",
        {"/occurred_at": MISSING},
        [("/occurred_at", REQUIRED)],
        id="missing-occurred-at",
    ),
    pytest.param("order.placed", {"/type": MISSING}, [("/type", REQUIRED)], id="missing-type"),
    pytest.param("order.placed", {"/data": MISSING}, [("/data", REQUIRED)], id="missing-data"),
    pytest.param(
        "order.placed",
        {"/data/currency": MISSING, "/data/amount": MISSING},
        [("/data/currency", REQUIRED), ("/data/amount", REQUIRED)],
        id="missing-money",
    ),
    pytest.param(
        "invoice.issued",
        {"/data/debtor/name": MISSING},
        [("/data/debtor/name", REQUIRED)],
        id="missing-debtor-name",
    ),
    pytest.param(
        "payout.settled",
        {"/data/lines/1/invoice_ref": MISSING},
        [("/data/lines/1/invoice_ref", REQUIRED)],
        id="missing-line-ref",
    ),
    pytest.param("order.placed", {"/data": []}, [("/data", NOT_AN_OBJECT)], id="data-list"),
    pytest.param(
        "order.placed", {"/data": "EUR 12.50"}, [("/data", NOT_AN_OBJECT)], id="data-string"
    ),
    pytest.param("order.placed", {"/data": None}, [("/data", NOT_AN_OBJECT)], id="data-null"),
    pytest.param(
        "invoice.issued",
        {"/data/debtor": "東京商事"},
        [("/data/debtor", "Must be an object.")],
        id="debtor-string",
    ),
    pytest.param(
        "payout.settled",
        {"/data/lines": {"0": {}}},
        [("/data/lines", "Input should be a valid list")],
        id="lines-object",
    ),
    pytest.param(
        "invoice.issued",
        {"/data/due_date": "2026-09-30"},
        [("/data/due_date", "Must not be before issue_date.")],
        id="due-before-issue",
    ),
    pytest.param(
        "invoice.issued",
        {"/data/due_date": "2028-10-02"},
        [("/data/due_date", "Must be within two years of issue_date.")],
        id="due-too-late",
    ),
    pytest.param(
        "payout.settled",
        {"/data/lines": [{"invoice_ref": f"INV-{n}", "amount": "0.001"} for n in range(1001)]},
        [("/data/lines", "List should have at most 1000 items after validation, not 1001")],
        id="1001-lines",
    ),
    pytest.param(
        "invoice.issued",
        {"/data/debtor/kind": "person"},
        [("/data/debtor/kind", "Input should be 'marketplace' or 'business'")],
        id="debtor-kind",
    ),
    pytest.param(
        "invoice.issued",
        {"/data/debtor/country": "jp"},
        [("/data/debtor/country", "String should match pattern '^[A-Z]{2}$'")],
        id="debtor-country",
    ),
    pytest.param(
        "order.placed",
        {"/ref": MISSING, "/occurred_at": "yesterday", "/data/amount": "NaN"},
        [
            ("/ref", REQUIRED),
            ("/occurred_at", TIMESTAMP_FORMAT),
            ("/data/amount", not_plain("NaN")),
        ],
        id="all-problems-in-one-round-trip",
    ),
    pytest.param(
        "order.placed",
        {"/ref": "", "/data": []},
        [("/ref", BLANK), ("/data", NOT_AN_OBJECT)],
        id="envelope-and-data-not-object",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "changes", "expected"), STRUCTURE_CASES)
def test_bad_structure_is_refused(
    kind: str,
    changes: dict[str, Any],
    expected: list[tuple[str, str]],
    seeded: Merchant,
    now: datetime,
) -> None:
    assert_refused(event(kind, changes), expected, seeded, now)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw",
    [[VALID["order.placed"]], "order.placed", None, 42, True],
    ids=["list", "string", "null", "number", "bool"],
)
def test_an_event_that_is_not_an_object_is_refused(
    raw: object, seeded: Merchant, now: datetime
) -> None:
    assert_refused(raw, [("", "An event must be a JSON object.")], seeded, now)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value", [["order.placed"], {"name": "order.placed"}], ids=["list", "object"]
)
def test_an_unhashable_type_is_refused_not_crashed(
    value: object, seeded: Merchant, now: datetime
) -> None:
    assert_refused(event("order.placed", {"/type": value}), [("/type", NOT_A_STRING)], seeded, now)


@pytest.mark.django_db
@pytest.mark.parametrize("value", [["EUR"], {"code": "EUR"}], ids=["list", "object"])
def test_an_unhashable_currency_is_refused_not_crashed(
    value: object, seeded: Merchant, now: datetime
) -> None:
    assert_refused(
        event("order.placed", {"/data/currency": value}),
        [("/data/currency", CURRENCY)],
        seeded,
        now,
    )


# ------------------------------------------------------------------------------------------
# Events from the future
# ------------------------------------------------------------------------------------------


def _at(moment: datetime) -> dict[str, Any]:
    return event("order.placed", {"/occurred_at": moment.isoformat()})


def _skew() -> timedelta:
    return timedelta(seconds=django_settings.LEDGER_MAX_CLOCK_SKEW_SECONDS)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "beyond_skew",
    [timedelta(microseconds=1), timedelta(seconds=1), timedelta(hours=1), timedelta(days=365)],
    ids=["a-microsecond", "a-second", "an-hour", "a-year"],
)
def test_an_event_from_the_future_is_refused(
    beyond_skew: timedelta, seeded: Merchant, now: datetime
) -> None:
    assert_refused(_at(now + _skew() + beyond_skew), [("/0/occurred_at", FUTURE)], seeded, now)


@pytest.mark.django_db
def test_the_clock_skew_comes_from_settings(settings: Any, seeded: Merchant, now: datetime) -> None:
    settings.LEDGER_MAX_CLOCK_SKEW_SECONDS = 0
    assert_refused(_at(now + timedelta(seconds=1)), [("/0/occurred_at", FUTURE)], seeded, now)


@pytest.mark.django_db
def test_the_future_is_measured_as_an_instant_not_as_a_wall_clock(
    seeded: Merchant, now: datetime
) -> None:
    # Written with a +01:00 offset; the comparison must be made on the instant, in UTC.
    moment = (now + _skew() + timedelta(seconds=1)).astimezone(timezone(timedelta(hours=1)))
    assert_refused(_at(moment), [("/0/occurred_at", FUTURE)], seeded, now)


@pytest.mark.django_db
def test_an_event_within_the_clock_skew_is_accepted(seeded: Merchant, now: datetime) -> None:
    before = Entry.objects.count()
    receipt = entry_append(
        source=SOURCE,
        merchant_id=seeded.pk,
        event=event_parse(_at(now + _skew())),
        now=now,
    )
    assert receipt.seq == 3
    assert Entry.objects.count() == before + 1


@pytest.mark.django_db
def test_one_future_event_refuses_the_whole_batch(seeded: Merchant, now: datetime) -> None:
    before = ledger_state()
    batch = [
        event_parse(event("order.placed", {"/ref": "ORD-A"})),
        event_parse(
            event("order.placed", {"/ref": "ORD-B", "/occurred_at": "2026-11-02T00:00:00Z"})
        ),
        event_parse(
            event("order.placed", {"/ref": "ORD-C", "/occurred_at": "2027-01-01T00:00:00Z"})
        ),
    ]
    with pytest.raises(EventInvalid) as refused:
        entries_append(
            source=SOURCE,
            entries=[NewEntry(merchant_id=seeded.pk, event=e) for e in batch],
            now=now,
        )
    assert [(e.pointer, e.message) for e in refused.value.errors] == [
        ("/1/occurred_at", FUTURE),
        ("/2/occurred_at", FUTURE),
    ]
    assert ledger_state() == before


# ------------------------------------------------------------------------------------------
# Valid events of every type
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(VALID))
def test_a_valid_event_parses_to_its_canonical_form(kind: str) -> None:
    parsed = event_parse(VALID[kind])
    occurred_at, data = NORMALISED[kind]
    assert parsed == ValidEvent(
        type=kind,
        ref=VALID[kind]["ref"],
        occurred_at=datetime.fromisoformat(occurred_at),
        data=data,
    )
    assert format_timestamp(parsed.occurred_at) == occurred_at


@pytest.mark.parametrize(
    ("amount", "currency", "canonical"),
    [
        ("12.5", "EUR", "12.50"),
        ("12", "EUR", "12.00"),
        ("7", "KWD", "7.000"),
        ("0.5", "CLF", "0.5000"),
    ],
)
def test_amounts_are_written_with_the_currency_exponent(
    amount: str, currency: str, canonical: str
) -> None:
    parsed = event_parse(
        event("order.placed", {"/data/currency": currency, "/data/amount": amount})
    )
    assert parsed.data["amount"] == canonical


@pytest.mark.parametrize(
    ("occurred_at", "stored"),
    [
        ("2026-10-01T10:00:00+01:00", "2026-10-01T09:00:00.000000Z"),
        ("2026-10-01T09:00:00Z", "2026-10-01T09:00:00.000000Z"),
        ("2026-10-01T09:00:00+00:00", "2026-10-01T09:00:00.000000Z"),
        ("2026-10-01T09:00:00-00:00", "2026-10-01T09:00:00.000000Z"),
        ("2026-10-01T01:00:00.5-08:00", "2026-10-01T09:00:00.500000Z"),
        ("2026-12-31T23:30:00-01:00", "2027-01-01T00:30:00.000000Z"),
    ],
)
def test_timestamps_are_stored_in_utc_with_microseconds(occurred_at: str, stored: str) -> None:
    parsed = event_parse(event("order.placed", {"/occurred_at": occurred_at}))
    assert format_timestamp(parsed.occurred_at) == stored


def test_empty_optional_fields_are_left_out_of_the_canonical_data() -> None:
    placed = event_parse(event("order.placed", {"/data/buyer": None}))
    settled = event_parse(event("payout.settled", {"/data/lines": []}))
    assert placed.data == {"currency": "EUR", "amount": "12.50"}
    assert "lines" not in settled.data
    assert placed == event_parse(event("order.placed", {"/data/buyer": MISSING}))


@pytest.mark.django_db
def test_every_event_type_appends_and_projects(seeded: Merchant, now: datetime) -> None:
    before = Entry.objects.count()
    receipts = entries_append(
        source=SOURCE,
        entries=[NewEntry(merchant_id=seeded.pk, event=event_parse(raw)) for raw in VALID.values()],
        now=now,
    )
    assert [r.seq for r in receipts] == list(range(3, 3 + len(VALID)))
    assert Entry.objects.count() == before + len(VALID)
    assert Order.objects.get(merchant=seeded, ref="ORD-SEED").status == Order.Status.CANCELLED
    assert Order.objects.get(merchant=seeded, ref="ORD-NEW").amount_minor == 1250
    assert Invoice.objects.get(merchant=seeded, ref="INV-SEED").credited_minor == 1900
    assert Invoice.objects.get(merchant=seeded, ref="INV-NEW").amount_minor == 150_000
    assert Shipment.objects.get(merchant=seeded, ref="SHP-NEW").status == Shipment.Status.RETURNED
    assert Payout.objects.get(merchant=seeded, ref="PO-NEW").amount_minor == 1500


# ------------------------------------------------------------------------------------------
# Conflicts with the chain: the projector refuses, the whole batch is rolled back
# ------------------------------------------------------------------------------------------


def _append_conflicting(
    merchant: Merchant, now: datetime, *raws: dict[str, Any], keys: tuple[str | None, ...] = ()
) -> EventConflict:
    before = ledger_state()
    keys = keys or (None,) * len(raws)
    entries = [
        NewEntry(merchant_id=merchant.pk, event=event_parse(raw), idempotency_key=key)
        for raw, key in zip(raws, keys, strict=True)
    ]
    with pytest.raises(EventConflict) as refused:
        entries_append(source=SOURCE, entries=entries, now=now)
    assert ledger_state() == before
    return refused.value


def _errors(conflict: EventConflict) -> list[tuple[str, str]]:
    return [(error.pointer, error.message) for error in conflict.errors]


@pytest.mark.django_db
def test_a_second_order_under_one_ref_conflicts(seeded: Merchant, now: datetime) -> None:
    # A fresh idempotency key: with the default one this would be a retry, not a new order.
    conflict = _append_conflicting(
        seeded, now, event("order.placed", {"/ref": "ORD-SEED"}), keys=("resent-1",)
    )
    [(pointer, message)] = _errors(conflict)
    assert pointer == "/0/ref"
    assert "already has" in message
    assert "'ORD-SEED'" in message


@pytest.mark.django_db
def test_a_duplicate_order_later_in_the_batch_is_located_by_its_index(
    seeded: Merchant, now: datetime
) -> None:
    order = event("order.placed", {"/ref": "ORD-A"})
    conflict = _append_conflicting(seeded, now, order, order, keys=("first", "second"))
    assert [pointer for pointer, _ in _errors(conflict)] == ["/1/ref"]


@pytest.mark.django_db
def test_cancelling_an_unknown_order_conflicts(seeded: Merchant, now: datetime) -> None:
    conflict = _append_conflicting(seeded, now, event("order.cancelled", {"/ref": "ORD-404"}))
    assert _errors(conflict) == [("/0/ref", "No open order 'ORD-404' to cancel.")]


@pytest.mark.django_db
def test_cancelling_an_order_twice_conflicts(seeded: Merchant, now: datetime) -> None:
    cancel = event("order.cancelled")
    conflict = _append_conflicting(seeded, now, cancel, cancel, keys=("cancel-1", "cancel-2"))
    assert _errors(conflict) == [("/1/ref", "No open order 'ORD-SEED' to cancel.")]


@pytest.mark.django_db
def test_crediting_an_unknown_invoice_conflicts(seeded: Merchant, now: datetime) -> None:
    conflict = _append_conflicting(
        seeded, now, event("invoice.credited", {"/data/invoice_ref": "INV-404"})
    )
    assert _errors(conflict) == [("/0/data/invoice_ref", "No invoice 'INV-404' to credit.")]


@pytest.mark.django_db
def test_a_credit_beyond_the_invoice_amount_conflicts(seeded: Merchant, now: datetime) -> None:
    conflict = _append_conflicting(
        seeded, now, event("invoice.credited", {"/data/amount": "119.01"})
    )
    assert _errors(conflict) == [
        ("/0/data/amount", "Credit notes would exceed the invoice amount.")
    ]


@pytest.mark.django_db
def test_credits_that_together_exceed_the_invoice_conflict(seeded: Merchant, now: datetime) -> None:
    first = event("invoice.credited", {"/ref": "CN-1", "/data/amount": "60.00"})
    second = event("invoice.credited", {"/ref": "CN-2", "/data/amount": "59.01"})
    conflict = _append_conflicting(seeded, now, first, second)
    assert _errors(conflict) == [
        ("/1/data/amount", "Credit notes would exceed the invoice amount.")
    ]


@pytest.mark.django_db
def test_a_credit_in_another_currency_conflicts(seeded: Merchant, now: datetime) -> None:
    conflict = _append_conflicting(
        seeded, now, event("invoice.credited", {"/data/currency": "USD"})
    )
    assert _errors(conflict) == [("/0/data/currency", "The invoice is in EUR.")]


@pytest.mark.django_db
def test_a_valid_event_before_a_conflict_is_not_written(seeded: Merchant, now: datetime) -> None:
    head = Chain.objects.get(pk=seeded.pk)
    conflict = _append_conflicting(
        seeded,
        now,
        event("order.placed", {"/ref": "ORD-FINE"}),
        event("order.cancelled", {"/ref": "ORD-404"}),
    )
    assert _errors(conflict) == [("/1/ref", "No open order 'ORD-404' to cancel.")]
    after = Chain.objects.get(pk=seeded.pk)
    assert after.head_seq == head.head_seq == 2
    assert after.head_hash == head.head_hash
    assert not Entry.objects.filter(external_ref="ORD-FINE").exists()
    assert not Order.objects.filter(ref="ORD-FINE").exists()


@pytest.mark.django_db
def test_a_conflict_for_one_merchant_writes_nothing_for_another(
    seeded: Merchant, make_merchant: Callable[..., Merchant], now: datetime
) -> None:
    other = make_merchant()
    before = ledger_state()
    entries = [
        NewEntry(merchant_id=other.pk, event=event_parse(event("order.placed"))),
        NewEntry(
            merchant_id=seeded.pk, event=event_parse(event("order.cancelled", {"/ref": "ORD-404"}))
        ),
    ]
    with pytest.raises(EventConflict) as refused:
        entries_append(source=SOURCE, entries=entries, now=now)
    assert _errors(refused.value) == [("/1/ref", "No open order 'ORD-404' to cancel.")]
    assert ledger_state() == before
    assert not Entry.objects.filter(chain_id=other.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("named", ["DE123456789", "de 123.456.789", "123456789"])
def test_an_invoice_naming_its_own_merchant_however_spelled_is_accepted(
    named: str, merchant: Merchant, now: datetime
) -> None:
    raw = event("invoice.issued", {"/data/supplier_tax_id": named})
    entries_append(source=SOURCE, entries=[NewEntry(merchant.pk, event_parse(raw))], now=now)


@pytest.mark.django_db
@pytest.mark.parametrize("named", ["DE123456780", "FR123456789", "AT123456789"])
def test_an_invoice_naming_another_supplier_is_refused_and_writes_nothing(
    named: str, merchant: Merchant, now: datetime
) -> None:
    """Issue 8, item 3: the supplier of an invoice is the merchant whose chain it joins."""
    before = ledger_state()
    invoice = event("invoice.issued", {"/data/supplier_tax_id": named})
    entries = [
        NewEntry(merchant.pk, event_parse(event("order.placed"))),
        NewEntry(merchant.pk, event_parse(invoice)),
    ]
    with pytest.raises(EventInvalid) as refused:
        entries_append(source=SOURCE, entries=entries, now=now)
    assert [pointer for pointer, _ in _errors(refused.value)] == ["/1/data/supplier_tax_id"]
    assert ledger_state() == before
