"""Marketplace settlement report layouts: detected from the header, read by header name.

Four layouts are understood (README, "Settlement reports"): Chainfin's own column set and the
header-driven mappings of the Amazon settlement flat file V2 (tab-separated), the Shopify
payments transactions export and Stripe's itemized payout reconciliation report. Every one is
turned into the same ``ReportLine`` so matching never knows which layout a line came from.

Nothing here reads the whole file: ``report_lines`` walks a binary file handle line by line, so
a report of a million lines costs the memory of one. A file that breaks a rule raises
``ReportRefused`` with the line and column, and the caller writes nothing (it validates the
whole file in a first pass before matching it in a second).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from operator import itemgetter, methodcaller
from typing import IO, TYPE_CHECKING, NamedTuple

from ledger.money import CURRENCY_EXPONENTS, MAX_MINOR_UNITS

if TYPE_CHECKING:
    from _csv import _reader

PAID_TO_BANK = "bank"
PAID_TO_MERCHANT = "merchant"
PAID_TO = (PAID_TO_BANK, PAID_TO_MERCHANT)

# OWASP's CSV injection list: a spreadsheet evaluates a cell starting with one of these. A plain
# signed number ("-12.50") is data, not a formula, and stays allowed.
_FORMULA_FIRST = frozenset("=+-@")
_starts_like_formula = methodcaller("startswith", tuple(_FORMULA_FIRST))
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
# Sign, whole (at most 16 digits: a longer one is refused before int() parses it), fraction.
_SIGNED_DECIMAL = re.compile(r"(-?)(0|[1-9][0-9]{0,15})(?:\.([0-9]+))?")


class ReportRefused(Exception):
    """The file is not a report we can read; ``reason`` says precisely why, for the uploader."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReportLine(NamedTuple):
    """One money movement of a report, whatever its layout.

    ``number`` is the line's row in the file (the header is row 1). ``invoice_ref`` and
    ``order_ref`` are both blank for a line that pays no receivable (a fee, a subscription).
    A named tuple: a million of them are made per report, and a tuple is the cheapest object.
    """

    number: int
    line_id: str
    payout_ref: str
    invoice_ref: str
    order_ref: str
    currency: str
    amount_minor: int
    paid_to: str
    settled_on: date


Row = Mapping[str, str]
# Reads one row's cells (its line number given) into a line, or None for a row that is not a
# money movement (Amazon's summary row, a Shopify charge not yet paid out).
RowReader = Callable[[list[str], int], ReportLine | None]


@dataclass(frozen=True)
class Layout:
    """A report layout: the column that identifies it, the ones it needs, and how a row maps.

    ``reader`` is given the file's header and returns the ``RowReader`` for its rows: columns
    are found by name, once per file, wherever the header puts them.
    """

    name: str
    signature: str
    required: tuple[str, ...]
    delimiter: str
    reader: Callable[[list[str]], RowReader]
    # Net amounts of the same order within one payout are summed before matching: these
    # layouts spread an order over several rows (price, tax, fees, refund).
    sums_orders: bool = False


def _by_name(
    line: Callable[[Row, int, dict[str, str]], ReportLine | None],
) -> Callable[[list[str]], RowReader]:
    """A reader handing ``line`` each row as a mapping of column name to cell, and ``carry``:
    state a layout keeps between rows (Amazon states currency and deposit date once, in the
    summary row)."""

    def reader(header: list[str]) -> RowReader:
        carry: dict[str, str] = {}
        return lambda cells, number: line(dict(zip(header, cells, strict=True)), number, carry)

    return reader


def _cell(row: Row, column: str) -> str:
    return (row.get(column) or "").strip()


def _required(row: Row, column: str, number: int) -> str:
    value = _cell(row, column)
    if not value:
        raise ReportRefused(f"Line {number}, column '{column}': the value is missing.")
    return value


def _currency(value: str, column: str, number: int) -> str:
    code = value.upper()
    if code not in CURRENCY_EXPONENTS:
        raise ReportRefused(
            f"Line {number}, column '{column}': '{value[:20]}' is not an ISO 4217 currency."
        )
    return code


def amount_parse(value: str, currency: str, *, column: str, number: int) -> int:
    """Parse a signed decimal amount in major units ("-12.50") into minor units of ``currency``.

    The rules of ``ledger.money.parse_minor_units``, with a sign, in one regular expression
    (it runs for every line of a report).

    :raises ReportRefused: naming the line and column; decimal commas, thousands separators,
        exponents, more decimals than the currency has and absurd magnitudes are all refused.
    """
    match = _SIGNED_DECIMAL.fullmatch(value)
    if match is None:
        raise ReportRefused(
            f"Line {number}, column '{column}': '{value[:40]}' is not a decimal amount such as"
            " -1234.50 (a point for decimals, no thousands separator)."
        )
    sign, whole, fraction = match.groups()
    exponent = CURRENCY_EXPONENTS[currency]
    if fraction is not None and len(fraction) > exponent:
        raise ReportRefused(
            f"Line {number}, column '{column}': {currency} has {exponent} decimal place(s);"
            f" '{value[:40]}' has {len(fraction)}."
        )
    scale: int = 10**exponent
    minor = int(whole) * scale + (int(fraction.ljust(exponent, "0")) if fraction else 0)
    if minor >= MAX_MINOR_UNITS:
        raise ReportRefused(f"Line {number}, column '{column}': '{value[:40]}' is too large.")
    return -minor if sign else minor


@lru_cache(maxsize=4096)
def _iso_date(value: str) -> date | None:
    # Most lines of a report share a handful of dates: parse each once.
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _date(value: str, column: str, number: int) -> date:
    """The date an ISO date or timestamp starts with ("2026-09-04 00:00:00 UTC")."""
    parsed = _iso_date(value)
    if parsed is None:
        raise ReportRefused(
            f"Line {number}, column '{column}': '{value[:40]}' is not a date (YYYY-MM-DD)."
        )
    return parsed


# --- Chainfin's column set --------------------------------------------------------------------

CHAINFIN_COLUMNS = (
    "line_id",
    "payout_ref",
    "invoice_ref",
    "order_ref",
    "currency",
    "amount",
    "paid_to",
    "settled_on",
)
_CHAINFIN_OPTIONAL = frozenset(("invoice_ref", "order_ref"))


def _chainfin_reader(header: list[str]) -> RowReader:
    """Chainfin's own layout, read by index (the columns found by name once): a million lines
    a run make a dict per row too dear. Cells are taken exactly as written, unpadded."""
    pick = itemgetter(*(header.index(column) for column in CHAINFIN_COLUMNS))
    required = [column for column in CHAINFIN_COLUMNS if column not in _CHAINFIN_OPTIONAL]
    pick_required = itemgetter(*(header.index(column) for column in required))

    def line(cells: list[str], number: int) -> ReportLine:
        values: tuple[str, ...] = pick(cells)
        line_id, payout_ref, invoice_ref, order_ref, currency, amount, paid_to, settled_on = values
        if "" in pick_required(cells):
            column = required[pick_required(cells).index("")]
            raise ReportRefused(f"Line {number}, column '{column}': the value is missing.")
        if currency not in CURRENCY_EXPONENTS:
            currency = _currency(currency, "currency", number)  # refuses, or allows "eur"
        if paid_to not in PAID_TO:
            raise ReportRefused(
                f"Line {number}, column 'paid_to': '{paid_to[:20]}' is neither 'bank' nor"
                " 'merchant'."
            )
        settled = _iso_date(settled_on) if len(settled_on) == 10 else None
        if settled is None:
            raise ReportRefused(
                f"Line {number}, column 'settled_on': '{settled_on[:40]}' is not a date"
                " (YYYY-MM-DD)."
            )
        minor = amount_parse(amount, currency, column="amount", number=number)
        return ReportLine(
            number, line_id, payout_ref, invoice_ref, order_ref, currency, minor, paid_to, settled
        )

    return line


# --- Amazon settlement flat file V2 -----------------------------------------------------------


def _amazon_line(row: Row, number: int, carry: dict[str, str]) -> ReportLine | None:
    settlement = _required(row, "settlement-id", number)
    if _cell(row, "total-amount"):
        # The summary row: the settlement's currency and deposit date hold for every row after.
        carry["currency"] = _currency(_required(row, "currency", number), "currency", number)
        carry["deposit"] = _date(
            _required(row, "deposit-date", number), "deposit-date", number
        ).isoformat()
        carry["settlement"] = settlement
        return None
    if carry.get("settlement") != settlement:
        raise ReportRefused(
            f"Line {number}: settlement {settlement[:40]} has no summary row (the row with"
            " 'total-amount', 'currency' and 'deposit-date') before its transactions."
        )
    currency = carry["currency"]
    return ReportLine(
        number=number,
        line_id=f"{settlement}:{number}",
        payout_ref=settlement,
        invoice_ref="",
        order_ref=_cell(row, "order-id"),
        currency=currency,
        amount_minor=amount_parse(
            _required(row, "amount", number), currency, column="amount", number=number
        ),
        paid_to=PAID_TO_MERCHANT,
        settled_on=date.fromisoformat(carry["deposit"]),
    )


# --- Shopify payments transactions export ----------------------------------------------------


def _shopify_line(row: Row, number: int, carry: dict[str, str]) -> ReportLine | None:
    if _cell(row, "Payout Status") != "paid":
        return None  # not in a payout yet: a later export carries it
    currency = _currency(_required(row, "Currency", number), "Currency", number)
    payout = _required(row, "Payout ID", number)
    return ReportLine(
        number=number,
        line_id=f"{payout}:{number}",
        payout_ref=payout,
        invoice_ref="",
        order_ref=_cell(row, "Order"),
        currency=currency,
        amount_minor=amount_parse(
            _required(row, "Net", number), currency, column="Net", number=number
        ),
        paid_to=PAID_TO_MERCHANT,
        settled_on=_date(_required(row, "Payout Date", number), "Payout Date", number),
    )


# --- Stripe itemized payout reconciliation -----------------------------------------------------

# Stripe puts the platform's own order reference in payment metadata, a column chosen per run.
STRIPE_ORDER_COLUMN = "payment_metadata[order_ref]"


def _stripe_line(row: Row, number: int, carry: dict[str, str]) -> ReportLine:
    currency = _currency(_required(row, "currency", number), "currency", number)
    return ReportLine(
        number=number,
        line_id=_required(row, "balance_transaction_id", number),
        payout_ref=_required(row, "automatic_payout_id", number),
        invoice_ref="",
        order_ref=_cell(row, STRIPE_ORDER_COLUMN),
        currency=currency,
        amount_minor=amount_parse(
            _required(row, "net", number), currency, column="net", number=number
        ),
        paid_to=PAID_TO_MERCHANT,
        settled_on=_date(
            _required(row, "automatic_payout_effective_at", number),
            "automatic_payout_effective_at",
            number,
        ),
    )


LAYOUTS: tuple[Layout, ...] = (
    Layout("chainfin", "payout_ref", CHAINFIN_COLUMNS, ",", _chainfin_reader),
    Layout(
        "amazon-v2",
        "settlement-id",
        (
            "settlement-id",
            "total-amount",
            "currency",
            "deposit-date",
            "transaction-type",
            "order-id",
            "amount",
        ),
        "\t",
        _by_name(_amazon_line),
        sums_orders=True,
    ),
    Layout(
        "shopify-payments",
        "Payout ID",
        ("Type", "Order", "Payout Status", "Payout Date", "Payout ID", "Net", "Currency"),
        ",",
        _by_name(_shopify_line),
        sums_orders=True,
    ),
    Layout(
        "stripe-itemized",
        "automatic_payout_id",
        (
            "automatic_payout_id",
            "automatic_payout_effective_at",
            "balance_transaction_id",
            "currency",
            "net",
        ),
        ",",
        _by_name(_stripe_line),
        sums_orders=True,
    ),
)


def _text_lines(handle: IO[bytes]) -> Iterator[str]:
    """Decode ``handle`` as strict UTF-8 (a BOM allowed), line by line, naming where it is not.

    The fast path decodes in large chunks; only a file that fails is read again, a line at a
    time, to say which line and byte.
    """
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", errors="strict", newline="")
    try:
        yield from text
    except UnicodeDecodeError:
        handle.seek(0)
        raise _not_utf8(handle) from None
    finally:
        if not handle.closed:
            text.detach()  # the caller owns the file; the wrapper must not close it


def _not_utf8(handle: IO[bytes]) -> ReportRefused:
    for number, raw in enumerate(handle, start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return ReportRefused(
                f"The file is not UTF-8: line {number} has byte 0x{raw[exc.start]:02x} at"
                f" position {exc.start + 1}. Export the report as UTF-8."
            )
    return ReportRefused("The file is not UTF-8. Export the report as UTF-8.")


def _layout_for(header: list[str]) -> Layout:
    if len(set(header)) != len(header):
        repeated = sorted({name for name in header if header.count(name) > 1})
        raise ReportRefused(f"The header repeats column(s) {', '.join(repeated)}.")
    for layout in LAYOUTS:
        if layout.signature in header:
            missing = [name for name in layout.required if name not in header]
            if missing:
                raise ReportRefused(
                    f"The header looks like {layout.name} (it has '{layout.signature}') but"
                    f" lacks column(s) {', '.join(missing)}."
                )
            return layout
    known = "; ".join(f"{layout.name}: {', '.join(layout.required)}" for layout in LAYOUTS)
    raise ReportRefused(
        f"Unknown header ({', '.join(name[:40] for name in header[:12])}). Known layouts and"
        f" the columns they need: {known}."
    )


def _injection_check(cells: list[str], header: list[str], number: int) -> None:
    if not any(map(_starts_like_formula, cells)):  # C-speed for the usual clean row
        return
    for column, cell in zip(header, cells, strict=False):
        if cell[:1] in _FORMULA_FIRST and not _PLAIN_NUMBER.fullmatch(cell):
            raise ReportRefused(
                f"Line {number}, column '{column}': the cell starts with '{cell[0]}', which a"
                " spreadsheet would run as a formula (CSV injection); the file is refused."
            )


@dataclass
class ReportReader:
    """The layout of an open report and its lines, read once, in order."""

    layout: Layout
    lines: Iterator[ReportLine]


def report_open(handle: IO[bytes]) -> ReportReader:
    """Detect the layout from the header of ``handle`` and return a reader of its lines.

    :raises ReportRefused: empty file, not UTF-8, unknown or incomplete header; reading the
        lines raises it too, for a bad cell (formula, malformed amount or date, missing
        value) or a row whose field count differs from the header's.
    """
    text = _text_lines(handle)
    first = next(text, None)
    if first is None or not first.strip():
        raise ReportRefused("The file is empty: no header line.")
    if first.lstrip().startswith(("{", "[")):
        raise ReportRefused(
            "The file is JSON (an API object), not a settlement report: upload the CSV or TSV"
            " export."
        )
    delimiter = "\t" if "\t" in first else ","
    header = [name.strip() for name in next(csv.reader([first], delimiter=delimiter))]
    layout = _layout_for(header)
    if layout.delimiter != delimiter:
        raise ReportRefused(
            f"The {layout.name} layout is {'tab' if layout.delimiter == chr(9) else 'comma'}"
            "-separated; this file is not."
        )
    _injection_check(header, header, 1)
    rows = csv.reader(text, delimiter=delimiter, strict=True)
    return ReportReader(layout, _lines(rows, header, layout))


def _lines(rows: _reader, header: list[str], layout: Layout) -> Iterator[ReportLine]:
    read = layout.reader(header)
    width = len(header)
    number = 1
    try:
        for cells in rows:
            number = rows.line_num + 1  # the header was line 1; a quoted field may span lines
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue  # a blank line, as some exports end with
            if len(cells) != width:
                raise ReportRefused(
                    f"Line {number} has {len(cells)} field(s); the header has {width}."
                )
            _injection_check(cells, header, number)
            line = read(cells, number)
            if line is not None:
                yield line
    except csv.Error as exc:
        raise ReportRefused(f"Line {number + 1} is not well-formed CSV: {exc}.") from None
