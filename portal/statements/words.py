"""A statement's figures in a supplier's words, English and Chinese: one table for the page,
the CSV and the PDF, so the three always say the same."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.utils import formats
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from portal.statements.selectors import Line, Statement

SECTION_TITLES: dict[str, Promise] = {
    "advances": _("Your financed invoices"),
    "reserve": _("Reserve held for you"),
    "recourse": _("Recourse you owe"),
    "suspense": _("Unmatched payments"),
}

SECTION_NOTES: dict[str, Promise] = {
    "advances": _("What your buyers still owe the bank on the invoices it financed."),
    "reserve": _(
        "The part of each invoice held back when it was financed, paid back to you "
        "when the buyer pays."
    ),
    "recourse": _("What you owe the bank after credit notes, returns or unpaid late fees."),
    "suspense": _("Payments the bank received for you and has not matched to an invoice yet."),
}

SUMMARY_WORDS: dict[str, Promise] = {
    "advances_disbursed": _("Advances disbursed"),
    "discount_fees": _("Discount fees withheld"),
    "late_fees": _("Late fees charged"),
    "repayments": _("Repayments from your buyers"),
    "reserve_releases": _("Reserve released or used"),
    "recourse_raised": _("Recourse raised"),
    "recourse_recovered": _("Recourse settled"),
    "paid_to_you": _("Paid to your bank account"),
}

# (section, kind, increase) of a section's line; anything else is the bank's own booking.
LINE_WORDS: dict[tuple[str, str, bool], Promise] = {
    ("advances", "financed", True): _("Invoices financed"),
    ("advances", "late_fees", True): _("Late fees"),
    ("advances", "settlement", False): _("Paid by your buyers"),
    ("advances", "dilution", False): _("Moved to recourse: credit notes, returns, cancellations"),
    ("reserve", "financed", True): _("Held back from advances"),
    ("reserve", "settlement", False): _("Released to you or used for late fees"),
    ("recourse", "dilution", True): _("Raised on credit notes, returns and cancellations"),
    ("recourse", "settlement", True): _("Late fees your reserve did not cover"),
    ("recourse", "settlement", False): _("Kept back from money paid to you"),
    ("suspense", "settlement", True): _("Payments not matched yet"),
    ("suspense", "settlement", False): _("Matched and applied"),
}
OTHER_WORDS = _("Other bookings by the bank")

OPENING = _("Opening balance")
CLOSING = _("Closing balance")


def line_words(section: str, line: Line) -> str:
    """The words of a line of ``section``, in the active language."""
    return str(LINE_WORDS.get((section, line.kind, line.amount_minor > 0), OTHER_WORDS))


def month_words(month: date) -> str:
    """The month as the active language writes it ("November 2026", "2026年11月")."""
    return formats.date_format(month, "YEAR_MONTH_FORMAT")


@dataclass(frozen=True)
class Row:
    """One printed line of a statement: codes for machines, words for people."""

    section: str  # "summary" or a section's name
    item: str  # "opening", "closing", a summary line's kind, or "<kind>:in"/"<kind>:out"
    section_words: str
    words: str
    amount_minor: int


def statement_rows(statement: Statement) -> list[Row]:
    """The statement as the CSV and the PDF print it: the summary, then each section from its
    opening balance through its movements to its closing balance."""
    summary = str(_("This month"))
    rows = [
        Row("summary", line.kind, summary, str(SUMMARY_WORDS[line.kind]), line.amount_minor)
        for line in statement.summary
    ]
    for section in statement.sections:
        title = str(SECTION_TITLES[section.name])
        rows.append(Row(section.name, "opening", title, str(OPENING), section.opening_minor))
        rows.extend(
            Row(
                section.name,
                f"{line.kind}:{'in' if line.amount_minor > 0 else 'out'}",
                title,
                line_words(section.name, line),
                line.amount_minor,
            )
            for line in section.lines
        )
        rows.append(Row(section.name, "closing", title, str(CLOSING), section.closing_minor))
    return rows


@dataclass(frozen=True)
class PrintedSection:
    name: str
    title: str
    note: str
    rows: tuple[Row, ...]


def statement_sections(statement: Statement) -> list[PrintedSection]:
    """The statement's rows grouped as the page shows them: the summary, then each account."""
    notes = {"summary": str(_("What moved this month, from the bank's books."))} | {
        name: str(note) for name, note in SECTION_NOTES.items()
    }
    grouped: dict[str, list[Row]] = {}
    for row in statement_rows(statement):
        grouped.setdefault(row.section, []).append(row)
    return [
        PrintedSection(name, rows[0].section_words, notes[name], tuple(rows))
        for name, rows in grouped.items()
    ]
