"""The notice of assignment as a business buyer reads it: a letter, as text and as a PDF.

Both are rendered from the notice's payload, the snapshot written when the advance was
disbursed, so a re-sent notice says exactly what the first one said. The PDF is drawn with
fpdf2 (pure Python, maintained, no system libraries); its built-in Helvetica covers Latin-1
only, so a character outside it is shown as "?" in the PDF, while the e-mail's text part, in
UTF-8, carries every name as written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fpdf import FPDF

from ledger.money import Money, parse_minor_units

_TITLE = "Notice of assignment"


def letter_subject(payload: dict[str, Any]) -> str:
    """The e-mail's subject line."""
    return f"{_TITLE} of receivables from {payload['supplier']['name']}"


def letter_text(payload: dict[str, Any], *, dated: datetime) -> str:
    """The notice as plain text: the e-mail's body."""
    lines = [
        _TITLE.upper(),
        "",
        *_preamble(payload, dated),
        "",
        "Invoice | due date | amount | payment reference",
        *(" | ".join(row) for row in _rows(payload)),
        "",
        _closing(payload),
    ]
    return "\n".join(lines) + "\n"


def letter_pdf(payload: dict[str, Any], *, dated: datetime) -> bytes:
    """The notice as an A4 PDF: the same words as the text, the invoices as a table."""
    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(letter_subject(payload)))
    pdf.set_author(_latin1(str(payload["assignee"])))
    pdf.set_creator("Chainfin")
    pdf.set_creation_date(dated)
    pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=16)
    pdf.cell(text=_TITLE, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", size=10)
    for paragraph in _preamble(payload, dated):
        pdf.multi_cell(w=0, h=5, text=_latin1(paragraph), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    with pdf.table(
        col_widths=(55, 25, 40, 60), text_align=("LEFT", "LEFT", "RIGHT", "LEFT")
    ) as table:
        for cells in (("Invoice", "Due date", "Amount", "Payment reference"), *_rows(payload)):
            row = table.row()
            for cell in cells:
                row.cell(_latin1(cell))
    pdf.ln(4)
    pdf.multi_cell(w=0, h=5, text=_latin1(_closing(payload)))
    return bytes(pdf.output())


def _preamble(payload: dict[str, Any], dated: datetime) -> list[str]:
    supplier, pay_to, assignee = payload["supplier"], payload["pay_to"], payload["assignee"]
    return [
        f"Date: {dated:%Y-%m-%d}",
        f"To: {_party(payload['debtor'])}",
        f"From: {_party(supplier)}",
        f"Assignee: {assignee}",
        "",
        f"{supplier['name']} has assigned to {assignee} the receivables listed below, with all "
        "rights to payment. From today, pay these invoices only to the assignee's account "
        "below, each under its own payment reference. A payment made to the supplier no "
        "longer settles them.",
        "",
        f"Account holder: {pay_to['account_holder']}",
        f"IBAN: {pay_to['iban']}",
        f"BIC: {pay_to['bic']}",
    ]


def _rows(payload: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [
        (str(r["ref"]), str(r["due_date"]), _amount(r), str(r["payment_reference"]))
        for r in payload["receivables"]
    ]


def _closing(payload: dict[str, Any]) -> str:
    return f"Advance reference (for correspondence): {payload['advance']}"


def _party(party: dict[str, Any]) -> str:
    details = ", ".join(str(party[k]) for k in ("tax_id", "country") if party.get(k))
    return f"{party['name']} ({details})" if details else str(party["name"])


def _amount(receivable: dict[str, Any]) -> str:
    currency = receivable["currency"]
    return Money.display(parse_minor_units(receivable["face"], currency), currency)


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")
