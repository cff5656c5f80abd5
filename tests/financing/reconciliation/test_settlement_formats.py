"""Every shared marketplace-settlement file parsed or refused with a precise reason, and the
layouts read by header name, never by position."""

from __future__ import annotations

import io
from datetime import date

import pytest

from financing.reconciliation.formats import ReportLine, ReportRefused, report_open
from tests.conftest import shared_format

FOLDER = "marketplace-settlement"
CHAINFIN_HEADER = "line_id,payout_ref,invoice_ref,order_ref,currency,amount,paid_to,settled_on\n"


def read(body: bytes) -> tuple[str, list[ReportLine]]:
    reader = report_open(io.BytesIO(body))
    return reader.layout.name, list(reader.lines)


def refusal(body: bytes) -> str:
    with pytest.raises(ReportRefused) as refused:
        read(body)
    return refused.value.reason


def test_amazon_v2_flat_file_sums_to_its_summary_row() -> None:
    body = shared_format(FOLDER, "SYNTHETIC-amazon-settlement-flatfile-v2.tsv").read_bytes()
    layout, lines = read(body)
    assert layout == "amazon-v2"
    assert len(lines) == 16  # every row but the summary
    assert sum(line.amount_minor for line in lines) == 6679  # total-amount 66.79
    first = lines[0]
    assert (first.payout_ref, first.order_ref, first.currency, first.amount_minor) == (
        "90000000001",
        "111-0000001-0000001",
        "USD",
        5000,
    )
    assert first.settled_on == date(2026, 3, 17)  # the deposit date of the summary row
    assert lines[-1].order_ref == ""  # the subscription fee pays no receivable


def test_shopify_export_leaves_out_what_is_not_paid_out_yet() -> None:
    body = shared_format(FOLDER, "SYNTHETIC-shopify-payments-transactions-export.csv").read_bytes()
    layout, lines = read(body)
    assert layout == "shopify-payments"
    assert len(lines) == 5  # the pending charge of #1004 waits for its payout
    assert sum(line.amount_minor for line in lines) == 21212  # payout 90000001 nets 212.12
    assert {line.payout_ref for line in lines} == {"90000001"}
    assert [line.order_ref for line in lines] == ["#1001", "#1002", "#1001", "#1003", ""]


def test_stripe_itemized_report_nets_its_payout() -> None:
    body = shared_format(FOLDER, "SYNTHETIC-stripe-payout-reconciliation-itemized.csv").read_bytes()
    layout, lines = read(body)
    assert layout == "stripe-itemized"
    assert sum(line.amount_minor for line in lines) == 9723  # nets to 97.23
    assert [line.line_id for line in lines][:2] == ["txn_SYNTH0001", "txn_SYNTH0002"]
    assert {line.currency for line in lines} == {"USD"}  # Stripe writes "usd"


@pytest.mark.parametrize(
    "name",
    [
        "stripe-fixture-balance_transaction.json",
        "stripe-fixture-event.json",
        "stripe-fixture-payout.json",
        "stripe-fixture-refund.json",
    ],
)
def test_stripe_api_objects_are_refused_as_json(name: str) -> None:
    reason = refusal(shared_format(FOLDER, name).read_bytes())
    assert reason.startswith("The file is JSON (an API object), not a settlement report")


def test_source_md_is_refused_with_the_known_layouts() -> None:
    reason = refusal(shared_format(FOLDER, "SOURCE.md").read_bytes())
    assert reason.startswith("Unknown header (# Marketplace settlement and payout form). Known")
    assert "chainfin: line_id, payout_ref, invoice_ref" in reason


def test_columns_are_found_by_name_in_any_order() -> None:
    body = shared_format(FOLDER, "SYNTHETIC-stripe-payout-reconciliation-itemized.csv").read_bytes()
    header, *rows = body.decode().splitlines()
    names = header.split(",")
    order = list(reversed(range(len(names))))
    shuffled = "\n".join(
        ",".join(line.split(",")[i] for i in order) for line in [header, *rows]
    ).encode()
    assert read(shuffled) == read(body)


def test_chainfin_lines() -> None:
    body = (CHAINFIN_HEADER + "L1,PO-1,INV-1,ORD-1,EUR,-12.50,bank,2026-11-01\n").encode()
    assert read(body) == (
        "chainfin",
        [
            ReportLine(2, "L1", "PO-1", "INV-1", "ORD-1", "EUR", -1250, "bank", date(2026, 11, 1)),
        ],
    )


def test_a_utf8_bom_is_fine() -> None:
    body = ("\ufeff" + CHAINFIN_HEADER + "L1,PO-1,INV-1,,EUR,1.00,bank,2026-11-01\n").encode()
    assert read(body)[0] == "chainfin"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (
            "L1,PO-1,=HYPERLINK(1),,EUR,1.00,bank,2026-11-01",
            "Line 2, column 'invoice_ref': the cell starts with '=', which a spreadsheet would"
            " run as a formula (CSV injection); the file is refused.",
        ),
        ("L1,PO-1,@SUM(A1),,EUR,1.00,bank,2026-11-01", "Line 2, column 'invoice_ref': the cell"),
        ("L1,+PO-1,INV,,EUR,1.00,bank,2026-11-01", "Line 2, column 'payout_ref': the cell"),
        ("-cmd,PO-1,INV,,EUR,1.00,bank,2026-11-01", "Line 2, column 'line_id': the cell"),
        (
            'L1,PO-1,INV,,EUR,"1,00",bank,2026-11-01',
            "Line 2, column 'amount': '1,00' is not a decimal amount such as -1234.50",
        ),
        ("L1,PO-1,INV,,EUR,1.005,bank,2026-11-01", "EUR has 2 decimal place(s); '1.005' has 3."),
        ("L1,PO-1,INV,,EUR,1e3,bank,2026-11-01", "'1e3' is not a decimal amount"),
        ("L1,PO-1,INV,,EUR,,bank,2026-11-01", "Line 2, column 'amount': the value is missing."),
        ("L1,PO-1,INV,,EURO,1.00,bank,2026-11-01", "'EURO' is not an ISO 4217 currency."),
        ("L1,PO-1,INV,,EUR,1.00,seller,2026-11-01", "'seller' is neither 'bank' nor 'merchant'."),
        ("L1,PO-1,INV,,EUR,1.00,bank,01/11/2026", "'01/11/2026' is not a date (YYYY-MM-DD)."),
        ("L1,PO-1,INV,,EUR,1.00,bank", "Line 2 has 7 field(s); the header has 8."),
    ],
)
def test_bad_cells_are_refused_precisely(row: str, reason: str) -> None:
    good = "L0,PO-1,INV-0,,EUR,1.00,bank,2026-11-01\n"
    body = (CHAINFIN_HEADER + row + "\n" + good).encode()
    assert reason in refusal(body)


def test_a_negative_amount_is_a_number_not_a_formula() -> None:
    body = shared_format(FOLDER, "SYNTHETIC-amazon-settlement-flatfile-v2.tsv").read_bytes()
    assert read(body)[1][2].amount_minor == -400  # "-4.00" in a cell is fine


def test_wrong_encoding_is_refused_with_the_line_and_byte() -> None:
    body = (CHAINFIN_HEADER + "L1,PO-1,INV-1,,EUR,1.00,bank,2026-11-01\n").encode()
    body += "L2,PO-1,Rechnung-Müller,,EUR,1.00,bank,2026-11-01\n".encode("latin-1")
    assert refusal(body) == (
        "The file is not UTF-8: line 3 has byte 0xfc at position 19. Export the report as UTF-8."
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "The file is empty: no header line."),
        (b"\n", "The file is empty: no header line."),
        (b"a,b,c\n1,2,3\n", "Unknown header (a, b, c). Known layouts"),
        (
            b"payout_ref,currency\nPO,EUR\n",
            "The header looks like chainfin (it has 'payout_ref') but lacks column(s) line_id,"
            " invoice_ref, order_ref, amount, paid_to, settled_on.",
        ),
        (b"payout_ref,payout_ref\n", "The header repeats column(s) payout_ref."),
        (
            CHAINFIN_HEADER.replace(",", "\t").encode(),
            "The chainfin layout is comma-separated; this file is not.",
        ),
        (
            (CHAINFIN_HEADER + 'L1,"PO-1,INV-1,,EUR,1.00,bank,2026-11-01\n').encode(),
            "is not well-formed CSV",
        ),
    ],
)
def test_bad_files_are_refused_precisely(body: bytes, reason: str) -> None:
    assert reason in refusal(body)


def test_amazon_rows_before_their_summary_are_refused() -> None:
    body = shared_format(FOLDER, "SYNTHETIC-amazon-settlement-flatfile-v2.tsv").read_bytes()
    header, _summary, *rows = body.split(b"\n")
    assert refusal(b"\n".join([header, *rows])) == (
        "Line 2: settlement 90000000001 has no summary row (the row with 'total-amount',"
        " 'currency' and 'deposit-date') before its transactions."
    )
