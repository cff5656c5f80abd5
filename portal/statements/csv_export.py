"""A month's statements as CSV: integer minor units for machines, a decimal amount for people.

Spreadsheets run a cell that starts with = + - @ (or a tab or carriage return) as a formula, so
every text cell that does is prefixed with an apostrophe (OWASP's "CSV injection" advice): a
merchant's name or a translated word can never become a formula. Numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
import re

from ledger.money import format_minor_units
from merchants.models import Merchant
from portal.statements.selectors import Statement
from portal.statements.words import statement_rows

HEADER = (
    "merchant_id",
    "merchant",
    "month",
    "currency",
    "section",
    "item",
    "description",
    "amount_minor",
    "amount",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def csv_cell(value: str | int) -> str | int:
    """``value`` safe to open in a spreadsheet: numbers as they are, text never a formula."""
    if isinstance(value, int) or _PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value if value.startswith(_FORMULA_START) else value


def statements_csv(*, merchant: Merchant, statements: list[Statement]) -> str:
    """The month's statements, one row per figure, every field quoted."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(HEADER)
    for statement in statements:
        for row in statement_rows(statement):
            writer.writerow(
                csv_cell(cell)
                for cell in (
                    merchant.public_id,
                    merchant.legal_name,
                    statement.month.strftime("%Y-%m"),
                    statement.currency,
                    row.section,
                    row.item,
                    f"{row.section_words}: {row.words}",
                    row.amount_minor,
                    format_minor_units(row.amount_minor, statement.currency),
                )
            )
    return out.getvalue()
