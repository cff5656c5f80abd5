"""A month's statements as an A4 PDF, drawn with fpdf2 (as financing/notice_letters.py is).

Chinese needs a CJK font embedded: Debian's fonts-wqy-microhei (installed by .ci/run) ships
WenQuanYi Micro Hei as a TrueType collection, which fpdf2 reads by face number; only the
glyphs used are embedded. The font also covers Latin, so it serves every language when it is
there. Without it the statement is drawn in English with Helvetica (Latin-1; anything else
shows as "?") and says why at the top, rather than failing the download.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from django.utils import translation
from django.utils.translation import gettext as _
from fpdf import FPDF
from fpdf.fonts import FontFace

from ledger.money import Money
from merchants.models import Merchant
from portal.statements.selectors import Statement
from portal.statements.words import month_words, statement_rows

CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
_CJK_FAMILY = "WenQuanYiMicroHei"
FALLBACK_NOTE = "The Chinese font is not installed on this server, so this statement is in English."


def statements_pdf(
    *, merchant: Merchant, month: date, statements: list[Statement], now: datetime
) -> bytes:
    """The month's statements in the active language; English when it needs a font we lack."""
    pdf = FPDF(format="A4")
    pdf.set_creator("Chainfin")
    pdf.set_creation_date(now)
    family = _font(pdf)
    note = ""
    if family is None:
        family = "Helvetica"
        if translation.get_language() != "en":
            note = FALLBACK_NOTE
    language = translation.get_language() if not note else "en"
    with translation.override(language):
        _draw(pdf, family, merchant, month, statements, note, latin1=family == "Helvetica")
    return bytes(pdf.output())


def _font(pdf: FPDF) -> str | None:
    if not CJK_FONT.is_file():
        return None
    try:
        pdf.add_font(_CJK_FAMILY, fname=str(CJK_FONT), collection_font_number=0)
    except Exception:  # a damaged or foreign font file: the English statement still goes out
        return None
    return _CJK_FAMILY


def _draw(
    pdf: FPDF,
    family: str,
    merchant: Merchant,
    month: date,
    statements: list[Statement],
    note: str,
    *,
    latin1: bool,
) -> None:
    def text(value: str) -> str:
        return value.encode("latin-1", "replace").decode("latin-1") if latin1 else value

    title = _("Statement for %(month)s") % {"month": month_words(month)}
    pdf.set_title(text(title))
    pdf.set_author(text(merchant.legal_name))
    pdf.add_page()
    pdf.set_font(family, size=16)
    pdf.cell(text=text(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, size=10)
    pdf.cell(
        text=text(f"{merchant.legal_name} ({merchant.public_id})"), new_x="LMARGIN", new_y="NEXT"
    )
    if note:
        pdf.ln(2)
        pdf.multi_cell(w=0, h=5, text=note, new_x="LMARGIN", new_y="NEXT")
    for statement in statements:
        pdf.ln(4)
        pdf.set_font(family, size=13)
        heading = _("Figures in %(currency)s") % {"currency": statement.currency}
        pdf.cell(text=text(heading), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(family, size=9)
        with pdf.table(
            col_widths=(50, 85, 45),
            text_align=("LEFT", "LEFT", "RIGHT"),
            # Not bold: the CJK font has no bold face, and fpdf2 would refuse the headings.
            headings_style=FontFace(emphasis="", fill_color=(235, 238, 244)),
        ) as table:
            header = table.row()
            for cell in (_("Section"), _("Item"), _("Amount")):
                header.cell(text(cell))
            for row in statement_rows(statement):
                cells = table.row()
                cells.cell(text(row.section_words))
                cells.cell(text(row.words))
                cells.cell(Money.display(row.amount_minor, statement.currency))
    pdf.ln(4)
    pdf.multi_cell(
        w=0,
        h=5,
        text=text(
            _(
                "Every figure is a sum of the bank's double-entry books for your accounts; "
                "each closing balance is the opening balance plus the lines above it."
            )
        ),
    )
