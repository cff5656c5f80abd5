"""A statement's downloads, opened as a person's tools open them: the CSV with the csv module
(no cell a spreadsheet would run as a formula), the PDF with pypdf in English and Chinese, and
in English with a note when the Chinese font is missing."""

# The shared fixture is imported; tests naming it as an argument are not redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from pypdf import PdfReader

from portal.statements import pdf as statement_pdf
from portal.statements.csv_export import csv_cell
from tests.portal.conftest import portal_sign_in
from tests.portal.statements_scenario import Activity, activity  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db
CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


@pytest.fixture
def client(activity: Activity, make_portal_user: Callable[..., User]) -> Client:
    return portal_sign_in(make_portal_user(activity.merchant))


def _pdf_text(client: Client) -> str:
    response = client.get(reverse("portal:statement_pdf", args=["2026-12"]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].endswith('-statement-2026-12.pdf"')
    reader = PdfReader(io.BytesIO(response.content))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tX", "'\tX"),
        ("-1500.00", "-1500.00"),
        (-150000, -150000),
        ("Supplier GmbH", "Supplier GmbH"),
    ],
)
def test_no_text_cell_is_a_formula(cell: str | int, safe: str | int) -> None:
    assert csv_cell(cell) == safe


def test_a_merchant_named_like_a_formula_stays_text_in_the_csv(
    activity: Activity, client: Client
) -> None:
    activity.merchant.legal_name = '=HYPERLINK("http://evil.example","Click")'
    activity.merchant.save(update_fields=["legal_name"])
    response = client.get(reverse("portal:statement_csv", args=["2026-12"]))
    text = response.content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:2] == ["merchant_id", "merchant"]
    assert all(row[1] == "'" + activity.merchant.legal_name for row in rows[1:])
    assert all(text_cell[:1] not in "=+-@" for row in rows[1:] for text_cell in row[1:7])
    # Quoted throughout: the name's comma and quotes survive the round trip.
    assert text.splitlines()[1].startswith(f'"{activity.merchant.public_id}","\'=HYPERLINK(""')


def test_the_pdf_in_english(client: Client) -> None:
    text = _pdf_text(client)
    assert "Statement for December 2026" in text
    assert "Repayments from your buyers" in text and "1,900.00 EUR" in text
    assert "Recourse you owe" in text


@pytest.mark.skipif(not CJK_FONT.exists(), reason="fonts-wqy-microhei is not installed")
def test_the_pdf_in_chinese_embeds_a_cjk_font(client: Client) -> None:
    client.cookies["django_language"] = "zh-hans"
    text = _pdf_text(client)
    assert "2026年12月对账单" in text
    assert "您应付的追索款" in text and "1,900.00 EUR" in text
    assert statement_pdf.FALLBACK_NOTE not in text


@pytest.mark.parametrize("font", ["missing", "damaged"])
def test_without_a_usable_cjk_font_chinese_falls_back_to_english(
    client: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, font: str
) -> None:
    path = tmp_path / "font.ttc"
    if font == "damaged":
        path.write_bytes(b"ttcf" + b"\x00" * 64)
    monkeypatch.setattr(statement_pdf, "CJK_FONT", path)
    client.cookies["django_language"] = "zh-hans"
    text = _pdf_text(client)
    assert "Statement for December 2026" in text
    assert "The Chinese font is not installed on this server" in text
