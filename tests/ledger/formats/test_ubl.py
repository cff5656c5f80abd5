"""UBL 2.1 / Peppol BIS 3 documents into ledger events: the published samples, then each rule.

The samples are the CEN/TC 434 test files in ../shared/formats/ubl-invoice, read as they are.
Every one of them must be in SAMPLES with its exact outcome, so a file added to or removed from
that folder fails the suite until someone decides what Chainfin should make of it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest

from ledger.events import event_parse
from ledger.exceptions import FieldError, LedgerError
from ledger.formats.ubl import UblDocument, UblRejected, ubl_parse

SAMPLES_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "formats" / "ubl-invoice"
NOT_A_SAMPLE = {"SOURCE.md"}


@dataclass(frozen=True)
class Parsed:
    document: str
    event: dict[str, Any]


@dataclass(frozen=True)
class Refused:
    code: str
    pointer: str


SEK_2018133_CREDIT = {"currency": "SEK", "amount": "10000.00", "invoice_ref": "2018133"}

SAMPLES: dict[str, Parsed | Refused] = {
    # Plain EN 16931, no buyer order reference: evidence without an order (not fundable until
    # linked).
    "en16931-ubl-invoice-example1-20-lines.xml": Parsed(
        "Invoice",
        {
            "type": "invoice.issued",
            "ref": "12115118",
            "occurred_at": "2015-01-09T00:00:00Z",
            "data": {
                "currency": "EUR",
                "amount": "250.33",
                "issue_date": "2015-01-09",
                "due_date": "2015-01-09",
                "debtor": {"kind": "business", "name": "ODIN 59", "country": "NL"},
                "supplier_tax_id": "NL8200.98.395.B.01",
            },
        },
    ),
    "peppol-bis3-creditnote-2018140-credits-2018133.xml": Parsed(
        "CreditNote",
        {
            "type": "invoice.credited",
            "ref": "2018140",
            "occurred_at": "2018-02-10T00:00:00Z",
            "data": {**SEK_2018133_CREDIT, "issue_date": "2018-02-10"},
        },
    ),
    # Credits two preceding invoices at once; a credit must reduce exactly one receivable.
    "peppol-bis3-creditnote-max-content.xml": Refused(
        "ubl_ambiguous_billing_reference",
        "/CreditNote/cac:BillingReference[2]/cac:InvoiceDocumentReference/cbc:ID",
    ),
    "peppol-bis3-invoice-2018133-original.xml": Parsed(
        "Invoice",
        {
            "type": "invoice.issued",
            "ref": "2018133",
            "occurred_at": "2018-02-08T00:00:00Z",
            "data": {
                "currency": "SEK",
                "amount": "10000.00",
                "order_ref": "2018117",
                "issue_date": "2018-02-08",
                "due_date": "2018-03-07",
                "debtor": {"kind": "business", "name": "Project services AB", "country": "SE"},
                "supplier_tax_id": "SE123456789001",
            },
        },
    ),
    "peppol-bis3-invoice-allowances-charges.xml": Parsed(
        "Invoice",
        {
            "type": "invoice.issued",
            "ref": "2018210",
            "occurred_at": "2018-10-02T00:00:00Z",
            "data": {
                "currency": "SEK",
                "amount": "224600.00",
                "order_ref": "20180117",
                "issue_date": "2018-10-02",
                "due_date": "2018-11-02",
                "debtor": {
                    "kind": "business",
                    "name": "Tekniska Verken i Utmarken AB",
                    "country": "SE",
                },
                "supplier_tax_id": "SE123456789001",
            },
        },
    ),
    # Payable to the factor: already sold, so recorded with its payee and never financed; and
    # it names no buyer order.
    "peppol-bis3-invoice-factoring-assigned.xml": Parsed(
        "Invoice",
        {
            "type": "invoice.issued",
            "ref": "7023708",
            "occurred_at": "2017-08-29T00:00:00Z",
            "data": {
                "currency": "EUR",
                "amount": "115000.00",
                "issue_date": "2017-08-29",
                "due_date": "2017-09-29",
                "debtor": {"kind": "business", "name": "Komponentlagret AB", "country": "SE"},
                "supplier_tax_id": "SE112233445501",
                "payee": {"name": "Likviditet o. Finans AB"},
            },
        },
    ),
    # Its payee "Finansiell Support u.p.a." is another company (5566778899) than the seller.
    "peppol-bis3-invoice-max-content.xml": Parsed(
        "Invoice",
        {
            "type": "invoice.issued",
            "ref": "2018210",
            "occurred_at": "2018-02-08T00:00:00Z",
            "data": {
                "currency": "SEK",
                "amount": "12500.00",
                "order_ref": "20180117",
                "issue_date": "2018-02-08",
                "due_date": "2018-03-07",
                "debtor": {
                    "kind": "business",
                    "name": "Project services AB",
                    "tax_id": "SE123451234501",
                    "country": "SE",
                },
                "supplier_tax_id": "SE123456789001",
                "payee": {"name": "Finansiell Support u.p.a.", "id": "7350053850019"},
            },
        },
    ),
    # "30 dagar." in the payment terms is prose, not a due date.
    "peppol-bis3-invoice-prepaid-final-settlement.xml": Refused(
        "ubl_missing_due_date", "/Invoice/cbc:DueDate"
    ),
    "peppol-bis3-invoice-usd-with-sek-tax-currency.xml": Parsed(
        "Invoice",
        {
            "type": "invoice.issued",
            "ref": "800018",
            "occurred_at": "2018-01-26T00:00:00Z",
            "data": {
                "currency": "USD",
                "amount": "115000.00",
                "issue_date": "2018-01-26",
                "due_date": "2018-02-26",
                "debtor": {"kind": "business", "name": "Komponentlagret AB", "country": "SE"},
                "supplier_tax_id": "SE112233445501",
            },
        },
    ),
    "peppol-bis3-negative-invoice-2018140-credits-2018133.xml": Parsed(
        "Invoice",
        {
            "type": "invoice.credited",
            "ref": "2018140",
            "occurred_at": "2018-02-10T00:00:00Z",
            "data": {
                **SEK_2018133_CREDIT,
                "issue_date": "2018-02-10",
                "reason": "Crediting of the entire initial invoice; a correct invoice will be"
                " issued through a separate process.",
            },
        },
    ),
}


@pytest.fixture(scope="module")
def samples_dir() -> Path:
    if not SAMPLES_DIR.is_dir():
        message = f"UBL samples not found at {SAMPLES_DIR} (the shared formats folder)."
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return SAMPLES_DIR


def test_every_sample_has_an_expected_outcome(samples_dir: Path) -> None:
    files = {p.name for p in samples_dir.iterdir() if p.is_file()} - NOT_A_SAMPLE
    assert files == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample(samples_dir: Path, name: str) -> None:
    document = (samples_dir / name).read_bytes()
    expected = SAMPLES[name]
    if isinstance(expected, Refused):
        with pytest.raises(UblRejected) as refused:
            ubl_parse(document)
        assert (refused.value.code, refused.value.pointer) == (expected.code, expected.pointer)
        return
    parsed = ubl_parse(document)
    assert parsed.document == expected.document
    assert parsed.event == expected.event
    assert event_parse(parsed.event).data == expected.event["data"]  # already canonical


def test_factoring_sample_names_the_factor(samples_dir: Path) -> None:
    parsed = ubl_parse((samples_dir / "peppol-bis3-invoice-factoring-assigned.xml").read_bytes())
    assert parsed.event["data"]["payee"] == {"name": "Likviditet o. Finans AB"}


def test_order_less_sample_takes_the_order_given_with_the_upload(samples_dir: Path) -> None:
    document = (samples_dir / "peppol-bis3-invoice-usd-with-sek-tax-currency.xml").read_bytes()
    parsed = ubl_parse(document, order_ref="PO-2018-7")
    assert parsed.event["data"]["order_ref"] == "PO-2018-7"


def test_sample_with_an_order_refuses_another_given_with_the_upload(samples_dir: Path) -> None:
    document = (samples_dir / "peppol-bis3-invoice-2018133-original.xml").read_bytes()
    assert ubl_parse(document, order_ref="2018117").event["data"]["order_ref"] == "2018117"
    with pytest.raises(UblRejected) as refused:
        ubl_parse(document, order_ref="PO-OTHER")
    assert (refused.value.code, refused.value.pointer) == (
        "ubl_order_reference_conflict",
        "/Invoice/cac:OrderReference/cbc:ID",
    )


def test_sample_supplier_ids(samples_dir: Path) -> None:
    parsed = ubl_parse((samples_dir / "peppol-bis3-invoice-2018133-original.xml").read_bytes())
    # VAT id, organisation number (EndpointID and legal entity) and GLN; "Godkänd för F-skatt",
    # free text in the second PartyTaxScheme, is not an identifier.
    assert parsed.supplier_ids == {"SE123456789001", "1234567890", "1230123456789"}


# --- synthetic documents, one rule at a time ------------------------------------------------

ROOT_NS = {
    "Invoice": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "CreditNote": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
}
SUPPLIER = """<cac:AccountingSupplierParty><cac:Party>
  <cbc:EndpointID schemeID="0088">7300010000001</cbc:EndpointID>
  <cac:PartyName><cbc:Name>Acme Widgets</cbc:Name></cac:PartyName>
  <cac:PartyTaxScheme><cbc:CompanyID>nl 8200.98-395.B.01</cbc:CompanyID>
    <cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>
  <cac:PartyLegalEntity><cbc:RegistrationName>Acme Widgets B.V.</cbc:RegistrationName>
    <cbc:CompanyID>57151520</cbc:CompanyID></cac:PartyLegalEntity>
</cac:Party></cac:AccountingSupplierParty>"""


def customer(
    *,
    registration_name: str | None = "Buyer GmbH",
    party_name: str | None = "Buyer",
    tax_schemes: tuple[tuple[str, str], ...] = (("DE123456789", "VAT"),),
    country: str | None = "DE",
) -> str:
    parts = []
    if party_name is not None:
        parts.append(f"<cac:PartyName><cbc:Name>{escape(party_name)}</cbc:Name></cac:PartyName>")
    if country is not None:
        parts.append(
            "<cac:PostalAddress><cac:Country><cbc:IdentificationCode>"
            f"{escape(country)}</cbc:IdentificationCode></cac:Country></cac:PostalAddress>"
        )
    for company_id, scheme in tax_schemes:
        parts.append(
            f"<cac:PartyTaxScheme><cbc:CompanyID>{escape(company_id)}</cbc:CompanyID>"
            f"<cac:TaxScheme><cbc:ID>{scheme}</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>"
        )
    if registration_name is not None:
        parts.append(
            "<cac:PartyLegalEntity><cbc:RegistrationName>"
            f"{escape(registration_name)}</cbc:RegistrationName></cac:PartyLegalEntity>"
        )
    party = f"<cac:Party>{''.join(parts)}</cac:Party>"
    return f"<cac:AccountingCustomerParty>{party}</cac:AccountingCustomerParty>"


def total(amount: str, currency: str | None = "EUR") -> str:
    attribute = f' currencyID="{currency}"' if currency is not None else ""
    return (
        "<cac:LegalMonetaryTotal>"
        f"<cbc:PayableAmount{attribute}>{escape(amount)}</cbc:PayableAmount>"
        "</cac:LegalMonetaryTotal>"
    )


def billing(*refs: str) -> str:
    return "".join(
        "<cac:BillingReference><cac:InvoiceDocumentReference>"
        f"<cbc:ID>{escape(ref)}</cbc:ID></cac:InvoiceDocumentReference></cac:BillingReference>"
        for ref in refs
    )


def element(tag: str, text: str) -> str:
    return f"<{tag}>{escape(text)}</{tag}>"


def payee(*, name: str | None, ids: tuple[str, ...] = ()) -> str:
    parts = [
        f"<cac:PartyIdentification><cbc:ID>{i}</cbc:ID></cac:PartyIdentification>" for i in ids
    ]
    if name is not None:
        parts.append(f"<cac:PartyName><cbc:Name>{escape(name)}</cbc:Name></cac:PartyName>")
    return f"<cac:PayeeParty>{''.join(parts)}</cac:PayeeParty>"


INVOICE_DEFAULTS: dict[str, str | None] = {
    "id": element("cbc:ID", "INV-1"),
    "issue_date": element("cbc:IssueDate", "2026-03-01"),
    "issue_time": None,
    "due_date": element("cbc:DueDate", "2026-04-01"),
    "note": None,
    "currency": element("cbc:DocumentCurrencyCode", "EUR"),
    "order": "<cac:OrderReference><cbc:ID>PO-1</cbc:ID></cac:OrderReference>",
    "billing": None,
    "supplier": SUPPLIER,
    "customer": customer(),
    "payee": None,
    "payment_means": None,
    "total": total("1000.00"),
    "lines": None,
}
CREDIT_NOTE_DEFAULTS = {
    **INVOICE_DEFAULTS,
    "id": element("cbc:ID", "CN-1"),
    "issue_date": element("cbc:IssueDate", "2026-03-05"),
    "due_date": None,
    "billing": billing("INV-1"),
    "total": total("200.00"),
}


def ubl(root: str = "Invoice", **sections: str | None) -> bytes:
    """A small well-formed UBL document; each keyword replaces (or with None drops) a section."""
    defaults = INVOICE_DEFAULTS if root == "Invoice" else CREDIT_NOTE_DEFAULTS
    unknown = set(sections) - set(defaults)
    assert not unknown, f"no such section: {unknown}"
    body = "\n".join(part for part in {**defaults, **sections}.values() if part)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<{root} xmlns="{ROOT_NS[root]}"'
        ' xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"'
        ' xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">\n'
        f"{body}\n</{root}>\n"
    ).encode()


def refused(document: bytes) -> UblRejected:
    with pytest.raises(UblRejected) as caught:
        ubl_parse(document)
    return caught.value


def test_minimal_invoice() -> None:
    parsed = ubl_parse(ubl())
    assert parsed == UblDocument(
        event={
            "type": "invoice.issued",
            "ref": "INV-1",
            "occurred_at": "2026-03-01T00:00:00Z",
            "data": {
                "currency": "EUR",
                "amount": "1000.00",
                "order_ref": "PO-1",
                "issue_date": "2026-03-01",
                "due_date": "2026-04-01",
                "debtor": {
                    "kind": "business",
                    "name": "Buyer GmbH",
                    "tax_id": "DE123456789",
                    "country": "DE",
                },
                "supplier_tax_id": "nl 8200.98-395.B.01",
            },
        },
        supplier_ids=frozenset({"NL820098395B01", "7300010000001", "57151520"}),
        document="Invoice",
    )


def test_minimal_credit_note() -> None:
    parsed = ubl_parse(ubl("CreditNote", note=element("cbc:Note", "Two units returned")))
    assert parsed.document == "CreditNote"
    assert parsed.event == {
        "type": "invoice.credited",
        "ref": "CN-1",
        "occurred_at": "2026-03-05T00:00:00Z",
        "data": {
            "currency": "EUR",
            "amount": "200.00",
            "invoice_ref": "INV-1",
            "issue_date": "2026-03-05",
            "reason": "Two units returned",
        },
    }


def test_refusal_is_one_ledger_error_type() -> None:
    error = refused(ubl(due_date=None))
    assert isinstance(error, LedgerError)
    assert error.code == "ubl_missing_due_date"
    assert "Chainfin needs the date the receivable falls due" in error.message
    assert str(error) == error.message
    assert error.errors == [FieldError(error.pointer, error.message)]


def test_bytes_only() -> None:
    with pytest.raises(TypeError):
        ubl_parse(ubl().decode())  # type: ignore[arg-type]


# Dates and times


@pytest.mark.parametrize(
    ("issue_time", "occurred_at"),
    [
        ("10:30:00", "2026-03-01T10:30:00Z"),  # no offset: read as UTC
        ("10:30:00Z", "2026-03-01T10:30:00Z"),
        ("10:30:00.250", "2026-03-01T10:30:00Z"),
        ("10:30:00+02:00", "2026-03-01T08:30:00Z"),
        ("00:30:00+01:00", "2026-02-28T23:30:00Z"),
        ("22:00:00-05:00", "2026-03-02T03:00:00Z"),
    ],
)
def test_issue_time(issue_time: str, occurred_at: str) -> None:
    parsed = ubl_parse(ubl(issue_time=element("cbc:IssueTime", issue_time)))
    assert parsed.event["occurred_at"] == occurred_at
    assert parsed.event["data"]["issue_date"] == "2026-03-01"


@pytest.mark.parametrize("issue_time", ["25:00:00", "10:30", "10:30:00+25:00", "noon"])
def test_issue_time_invalid(issue_time: str) -> None:
    error = refused(ubl(issue_time=element("cbc:IssueTime", issue_time)))
    assert (error.code, error.pointer) == ("ubl_date_invalid", "/Invoice/cbc:IssueTime")


@pytest.mark.parametrize("issue_date", ["2026-02-30", "01/03/2026", "2026-03-01Z", "2026-3-1"])
def test_issue_date_invalid(issue_date: str) -> None:
    error = refused(ubl(issue_date=element("cbc:IssueDate", issue_date)))
    assert (error.code, error.pointer) == ("ubl_date_invalid", "/Invoice/cbc:IssueDate")


def test_due_date_from_payment_means() -> None:
    means = (
        "<cac:PaymentMeans><cbc:PaymentDueDate>2026-04-15</cbc:PaymentDueDate></cac:PaymentMeans>"
    )
    parsed = ubl_parse(ubl(due_date=None, payment_means=means * 2))  # repeated, same date
    assert parsed.event["data"]["due_date"] == "2026-04-15"


def test_due_date_wins_over_payment_means() -> None:
    means = (
        "<cac:PaymentMeans><cbc:PaymentDueDate>2026-04-15</cbc:PaymentDueDate></cac:PaymentMeans>"
    )
    parsed = ubl_parse(ubl(payment_means=means))
    assert parsed.event["data"]["due_date"] == "2026-04-01"


def test_payment_means_with_different_due_dates() -> None:
    means = "".join(
        f"<cac:PaymentMeans><cbc:PaymentDueDate>{day}</cbc:PaymentDueDate></cac:PaymentMeans>"
        for day in ("2026-04-15", "2026-05-15")
    )
    error = refused(ubl(due_date=None, payment_means=means))
    assert error.code == "ubl_duplicate_element"
    assert error.pointer == "/Invoice/cac:PaymentMeans[2]/cbc:PaymentDueDate"


def test_missing_due_date() -> None:
    error = refused(ubl(due_date=None))
    assert (error.code, error.pointer) == ("ubl_missing_due_date", "/Invoice/cbc:DueDate")


# Amounts and currency


@pytest.mark.parametrize(
    ("currency", "amount", "expected"),
    [
        ("EUR", "10000", "10000.00"),
        ("EUR", "250.33", "250.33"),
        ("EUR", "250.3", "250.30"),
        ("EUR", "+250.33", "250.33"),
        ("EUR", "0250.330", "250.33"),  # extra zeros change nothing, so nothing is rounded
        ("EUR", " 250.33\n", "250.33"),  # xs:decimal collapses surrounding whitespace
        ("EUR", ".5", "0.50"),
        ("JPY", "1500", "1500"),
        ("JPY", "1500.00", "1500"),
        ("KWD", "12.345", "12.345"),
    ],
)
def test_amounts(currency: str, amount: str, expected: str) -> None:
    document = ubl(
        currency=element("cbc:DocumentCurrencyCode", currency), total=total(amount, currency)
    )
    assert ubl_parse(document).event["data"]["amount"] == expected


@pytest.mark.parametrize(
    ("currency", "amount"), [("EUR", "250.333"), ("EUR", "0.001"), ("JPY", "1500.5")]
)
def test_amount_precision_is_refused_not_rounded(currency: str, amount: str) -> None:
    document = ubl(
        currency=element("cbc:DocumentCurrencyCode", currency), total=total(amount, currency)
    )
    error = refused(document)
    assert error.code == "ubl_amount_precision"
    assert error.pointer == "/Invoice/cac:LegalMonetaryTotal/cbc:PayableAmount"


@pytest.mark.parametrize(
    "amount",
    ["1E3", "1e3", "1,000.00", "1 000", "NaN", "Infinity", "--5", "+", ".", "5-", "0x10",
     "\u0661\u0660\u0660", "\uff11\uff10\uff10", "1" * 41],  # Arabic-Indic, full-width
)  # fmt: skip
def test_amount_invalid(amount: str) -> None:
    error = refused(ubl(total=total(amount)))
    assert error.code == "ubl_amount_invalid"
    assert error.pointer == "/Invoice/cac:LegalMonetaryTotal/cbc:PayableAmount"


def test_amount_too_large_is_refused_by_the_event_schema() -> None:
    error = refused(ubl(total=total("10000000000000")))  # 10**15 minor units
    assert error.code == "ubl_invalid_content"
    assert error.pointer == "/Invoice/cac:LegalMonetaryTotal/cbc:PayableAmount"


@pytest.mark.parametrize("amount", ["0", "0.00", "-0.00", "+0"])
def test_nothing_payable(amount: str) -> None:
    assert refused(ubl(total=total(amount))).code == "ubl_nothing_payable"


def test_zero_credit_note() -> None:
    assert refused(ubl("CreditNote", total=total("0.00"))).code == "ubl_nothing_payable"


@pytest.mark.parametrize("amount_currency", ["USD", "eur", None])
def test_payable_amount_in_another_currency(amount_currency: str | None) -> None:
    error = refused(ubl(total=total("1000.00", amount_currency)))
    assert error.code == "ubl_currency_mismatch"
    assert error.pointer == "/Invoice/cac:LegalMonetaryTotal/cbc:PayableAmount"


@pytest.mark.parametrize("currency", ["eur", "XXX", "EURO", "XAU"])
def test_currency_unsupported(currency: str) -> None:
    error = refused(
        ubl(currency=element("cbc:DocumentCurrencyCode", currency), total=total("1", currency))
    )
    assert (error.code, error.pointer) == (
        "ubl_currency_unsupported",
        "/Invoice/cbc:DocumentCurrencyCode",
    )


# Required, unique and placeholder elements


@pytest.mark.parametrize(
    ("section", "pointer"),
    [
        ("id", "/Invoice/cbc:ID"),
        ("issue_date", "/Invoice/cbc:IssueDate"),
        ("currency", "/Invoice/cbc:DocumentCurrencyCode"),
        ("total", "/Invoice/cac:LegalMonetaryTotal/cbc:PayableAmount"),
        ("supplier", "/Invoice/cac:AccountingSupplierParty/cac:Party"),
        ("customer", "/Invoice/cac:AccountingCustomerParty/cac:Party"),
    ],
)
def test_missing_element(section: str, pointer: str) -> None:
    error = refused(ubl(**{section: None}))
    assert (error.code, error.pointer) == ("ubl_missing_element", pointer)


def test_blank_element_counts_as_missing() -> None:
    error = refused(ubl(id="<cbc:ID>  </cbc:ID>"))
    assert (error.code, error.pointer) == ("ubl_missing_element", "/Invoice/cbc:ID")


@pytest.mark.parametrize(
    ("section", "pointer"),
    [
        ("id", "/Invoice/cbc:ID[2]"),
        ("total", "/Invoice/cac:LegalMonetaryTotal[2]"),
        ("currency", "/Invoice/cbc:DocumentCurrencyCode[2]"),
        ("order", "/Invoice/cac:OrderReference[2]"),
    ],
)
def test_duplicate_element_is_refused_not_chosen(section: str, pointer: str) -> None:
    twice = INVOICE_DEFAULTS[section]
    assert twice is not None
    error = refused(ubl(**{section: twice + twice}))
    assert (error.code, error.pointer) == ("ubl_duplicate_element", pointer)


def test_duplicate_payable_amount() -> None:
    amounts = '<cbc:PayableAmount currencyID="EUR">1</cbc:PayableAmount>' * 2
    error = refused(ubl(total=f"<cac:LegalMonetaryTotal>{amounts}</cac:LegalMonetaryTotal>"))
    assert error.code == "ubl_duplicate_element"
    assert error.pointer == "/Invoice/cac:LegalMonetaryTotal/cbc:PayableAmount[2]"


@pytest.mark.parametrize(
    "order",
    [
        None,
        "<cac:OrderReference><cbc:ID>NA</cbc:ID></cac:OrderReference>",  # Peppol's "no order"
        "<cac:OrderReference><cbc:SalesOrderID>S-1</cbc:SalesOrderID></cac:OrderReference>",
    ],
)
def test_missing_order_reference_is_recorded_without_an_order(order: str | None) -> None:
    parsed = ubl_parse(ubl(order=order))
    assert parsed.event["type"] == "invoice.issued"
    assert "order_ref" not in parsed.event["data"]
    assert "order_ref" not in event_parse(parsed.event).data


def order_line(*orders: str) -> str:
    references = "".join(
        "<cac:OrderLineReference><cbc:LineID>1</cbc:LineID><cac:OrderReference>"
        f"<cbc:ID>{escape(order)}</cbc:ID></cac:OrderReference></cac:OrderLineReference>"
        for order in orders
    )
    return f"<cac:InvoiceLine><cbc:ID>1</cbc:ID>{references}</cac:InvoiceLine>"


def test_order_reference_from_the_lines() -> None:
    lines = order_line("PO-7") + order_line("PO-7", "NA") + order_line()
    parsed = ubl_parse(ubl(order=None, lines=lines))
    assert parsed.event["data"]["order_ref"] == "PO-7"


def test_lines_naming_two_orders_link_none() -> None:
    parsed = ubl_parse(ubl(order=None, lines=order_line("PO-7") + order_line("PO-8")))
    assert "order_ref" not in parsed.event["data"]


def test_document_order_reference_wins_over_the_lines() -> None:
    parsed = ubl_parse(ubl(lines=order_line("PO-8")))
    assert parsed.event["data"]["order_ref"] == "PO-1"


def test_order_reference_given_with_the_upload() -> None:
    assert ubl_parse(ubl(order=None), order_ref="PO-9").event["data"]["order_ref"] == "PO-9"
    assert ubl_parse(ubl(), order_ref="PO-1").event["data"]["order_ref"] == "PO-1"
    lines = order_line("PO-7")
    error = refused_with(ubl(order=None, lines=lines), order_ref="PO-9")
    assert error.code == "ubl_order_reference_conflict"
    assert error.pointer == (
        "/Invoice/cac:InvoiceLine/cac:OrderLineReference/cac:OrderReference/cbc:ID"
    )


def refused_with(document: bytes, **kwargs: Any) -> UblRejected:
    with pytest.raises(UblRejected) as caught:
        ubl_parse(document, **kwargs)
    return caught.value


def test_wrong_root() -> None:
    document = ubl().replace(b"Invoice-2", b"Order-2").replace(b"<Invoice", b"<Order")
    document = document.replace(b"</Invoice>", b"</Order>")
    error = refused(document)
    assert (error.code, error.pointer) == ("ubl_unsupported_document", "/Order")
    assert "got Order in namespace urn:oasis:names:specification:ubl:schema:xsd:Order-2" in str(
        error
    )


def test_invoice_without_namespace() -> None:
    error = refused(b"<Invoice><ID>1</ID></Invoice>")
    assert error.code == "ubl_unsupported_document"
    assert "got Invoice (no namespace)" in error.message


def test_credit_note_root_in_invoice_namespace() -> None:
    document = ubl().replace(b"<Invoice", b"<CreditNote").replace(b"</Invoice>", b"</CreditNote>")
    assert refused(document).code == "ubl_unsupported_document"


# Credits


def test_negative_invoice_credits_the_referenced_invoice() -> None:
    parsed = ubl_parse(ubl(total=total("-250.50"), billing=billing("INV-0")))
    assert parsed.document == "Invoice"
    assert parsed.event["type"] == "invoice.credited"
    assert parsed.event["data"] == {
        "currency": "EUR",
        "amount": "250.50",
        "invoice_ref": "INV-0",
        "issue_date": "2026-03-01",
    }


def test_negative_invoice_without_reference() -> None:
    error = refused(ubl(total=total("-250.50")))
    assert error.code == "ubl_negative_invoice_without_reference"
    assert error.pointer == "/Invoice/cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID"


def test_negative_invoice_referencing_two_invoices() -> None:
    error = refused(ubl(total=total("-250.50"), billing=billing("INV-0", "INV-9")))
    assert error.code == "ubl_ambiguous_billing_reference"


def test_credit_note_without_billing_reference() -> None:
    error = refused(ubl("CreditNote", billing=None))
    assert error.code == "ubl_missing_billing_reference"


def test_credit_note_repeating_the_same_reference() -> None:
    parsed = ubl_parse(ubl("CreditNote", billing=billing("INV-1", "INV-1")))
    assert parsed.event["data"]["invoice_ref"] == "INV-1"


def test_negative_credit_note() -> None:
    error = refused(ubl("CreditNote", total=total("-200.00")))
    assert error.code == "ubl_negative_credit_note"


def test_credit_note_reason_is_cleaned_and_trimmed() -> None:
    note = "  Returned:\n\tdamaged \u202epallet\x9b \x85 " + "x" * 600
    parsed = ubl_parse(ubl("CreditNote", note=element("cbc:Note", note)))
    reason = parsed.event["data"]["reason"]
    assert reason.startswith("Returned: damaged pallet x")
    assert len(reason) == 500
    event_parse(parsed.event)


def test_credit_note_reason_that_is_only_control_characters_is_dropped() -> None:
    parsed = ubl_parse(ubl("CreditNote", note=element("cbc:Note", "\u202e\x9b \n")))
    assert "reason" not in parsed.event["data"]


def test_credit_note_ignores_payee() -> None:
    parsed = ubl_parse(ubl("CreditNote", payee=payee(name="Factor AB")))
    assert parsed.event["type"] == "invoice.credited"


# Parties


def test_payee_that_is_the_supplier_by_identifier() -> None:
    parsed = ubl_parse(ubl(payee=payee(name="Acme Treasury", ids=("NL8200 98 395 B01",))))
    assert parsed.event["type"] == "invoice.issued"


def test_payee_that_is_the_supplier_by_name() -> None:
    parsed = ubl_parse(ubl(payee=payee(name="  ACME widgets\n B.V. ")))
    assert parsed.event["type"] == "invoice.issued"


@pytest.mark.parametrize(
    ("payee_party", "shown"),
    [
        (payee(name="Factor AB"), {"name": "Factor AB"}),
        (
            payee(name="Acme Widgets B.V.", ids=("99999999",)),
            {"name": "Acme Widgets B.V.", "id": "99999999"},
        ),
        (payee(name="Factor AB", ids=("Godkänd för F-skatt",)), {"name": "Factor AB"}),
        (payee(name=None), {}),
    ],
    ids=["other-name", "same-name-other-id", "free-text-id", "anonymous"],
)
def test_payee_other_than_the_supplier(payee_party: str, shown: dict[str, str]) -> None:
    parsed = ubl_parse(ubl(payee=payee_party, order=None))
    assert parsed.event["data"]["payee"] == shown
    assert event_parse(parsed.event).data["payee"] == shown


def test_supplier_ids_are_normalised() -> None:
    assert ubl_parse(ubl()).supplier_ids == {"NL820098395B01", "7300010000001", "57151520"}


def test_debtor_name_falls_back_to_party_name() -> None:
    parsed = ubl_parse(ubl(customer=customer(registration_name=None, party_name="Buyer\n  Shop")))
    assert parsed.event["data"]["debtor"]["name"] == "Buyer Shop"


def test_debtor_without_name() -> None:
    error = refused(ubl(customer=customer(registration_name=None, party_name=None)))
    assert error.code == "ubl_missing_element"


def test_debtor_optional_fields() -> None:
    parsed = ubl_parse(ubl(customer=customer(tax_schemes=(), country=None)))
    assert parsed.event["data"]["debtor"] == {"kind": "business", "name": "Buyer GmbH"}


def test_debtor_vat_id_preferred_over_other_tax_ids() -> None:
    schemes = (("Godkänd för F-skatt", "TAX"), ("12/345/67890", "TAX"), ("DE123456789", "VAT"))
    parsed = ubl_parse(ubl(customer=customer(tax_schemes=schemes)))
    assert parsed.event["data"]["debtor"]["tax_id"] == "DE123456789"
    no_vat = ubl_parse(ubl(customer=customer(tax_schemes=schemes[:2])))
    assert no_vat.event["data"]["debtor"]["tax_id"] == "12/345/67890"


# What the event schema refuses comes back as one UblRejected, located in the document


@pytest.mark.parametrize(
    ("sections", "pointer", "message"),
    [
        (
            {"customer": customer(registration_name="B" * 201)},
            "/Invoice/cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity"
            "/cbc:RegistrationName",
            "debtor/name: Must be at most 200 characters.",
        ),
        (
            {"customer": customer(registration_name="Buyer \u202eHmbG")},
            "/Invoice/cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity"
            "/cbc:RegistrationName",
            "debtor/name: Must not contain control characters or lone surrogates.",
        ),
        (
            {"customer": customer(country="Germany")},
            "/Invoice/cac:AccountingCustomerParty/cac:Party/cac:PostalAddress/cac:Country"
            "/cbc:IdentificationCode",
            "debtor/country: String should match pattern '^[A-Z]{2}$'",
        ),
        (
            {"due_date": element("cbc:DueDate", "2026-02-01")},
            "/Invoice/cbc:DueDate",
            "due_date: Must not be before issue_date.",
        ),
        (
            {"issue_date": element("cbc:IssueDate", "1999-12-31")},
            "/Invoice/cbc:IssueDate",
            "occurred_at: Must lie between 2000 and 2100 (UTC).",
        ),
        (
            {"id": element("cbc:ID", "INV\n1")},
            "/Invoice/cbc:ID",
            "ref: Must not contain control characters or lone surrogates.",
        ),
        (
            {
                "order": "<cac:OrderReference><cbc:ID>"
                + "P" * 129
                + "</cbc:ID></cac:OrderReference>"
            },
            "/Invoice/cac:OrderReference/cbc:ID",
            "order_ref: Must be at most 128 characters.",
        ),
    ],
)
def test_event_schema_refusals(sections: dict[str, str], pointer: str, message: str) -> None:
    error = refused(ubl(**sections))
    assert (error.code, error.pointer, error.message) == ("ubl_invalid_content", pointer, message)
