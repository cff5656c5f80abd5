"""UBL invoices and EPCIS logistics documents over HTTP: matched to merchants, safely parsed."""

from __future__ import annotations

import json
from datetime import date

import pytest

from financing.eligibility import verdicts
from ledger.models import Entry, Invoice, Shipment
from tests.api.conftest import seller_id
from tests.conftest import shared_format

pytestmark = pytest.mark.django_db
UBL = "/api/v1/invoices/ubl"


def _ubl(name: str) -> bytes:
    return shared_format("ubl-invoice", name).read_bytes()


def _epcis(name: str) -> bytes:
    return shared_format("epcis", name).read_bytes()


@pytest.fixture
def swedish_supplier(make_merchant):
    """The supplier of the Peppol samples, selling through our marketplace."""
    return make_merchant(
        legal_name="Produtionsbolaget Sverige AB", country="SE", tax_id="se 1234 5678 9001"
    )


def test_ubl_invoice_and_its_credit_note(api, swedish_supplier) -> None:
    issued = api.post(
        UBL, _ubl("peppol-bis3-invoice-2018133-original.xml"), content_type="application/xml"
    )
    assert issued.status_code == 201, issued.content
    receipt = issued.json()["receipts"][0]
    assert (receipt["merchant"], receipt["merchant_id"], receipt["type"], receipt["ref"]) == (
        seller_id(swedish_supplier),
        swedish_supplier.public_id,
        "invoice.issued",
        "2018133",
    )
    credited = api.post(
        UBL, _ubl("peppol-bis3-creditnote-2018140-credits-2018133.xml"), content_type="text/xml"
    )
    assert credited.status_code == 201, credited.content
    invoice = Invoice.objects.get(ref="2018133")
    assert (invoice.currency, invoice.amount_minor, invoice.order_ref) == (
        "SEK",
        1000000,
        "2018117",
    )
    assert invoice.status == "credited"


def test_ubl_from_a_supplier_that_is_not_ours_is_404(api, merchant) -> None:
    response = api.post(
        UBL, _ubl("peppol-bis3-invoice-2018133-original.xml"), content_type="application/xml"
    )
    assert response.status_code == 404
    body = json.loads(response.content)
    assert body["code"] == "merchant_not_found"
    assert [e["pointer"] for e in body["errors"]] == [
        "/Invoice/cac:AccountingSupplierParty/cac:Party"
    ]
    assert Entry.objects.count() == 0


@pytest.fixture
def qvk_montage(make_merchant):
    """The supplier of the factoring and USD samples (VAT SE112233445501), as a merchant."""
    merchant = make_merchant(legal_name="QVK Montage", country="SE", tax_id="SE112233445501")
    merchant.kyc_status = merchant.KycStatus.VERIFIED
    merchant.save(update_fields=["kyc_status"])
    return merchant


def _codes(merchant, ref: str) -> list[str]:
    [verdict] = verdicts(merchant, date(2017, 9, 1), [ref])
    return verdict.codes


def test_ubl_refusal_names_the_reason(api, swedish_supplier) -> None:
    response = api.post(
        UBL, _ubl("peppol-bis3-invoice-prepaid-final-settlement.xml"), content_type="text/xml"
    )
    assert response.status_code == 422
    body = json.loads(response.content)
    assert body["code"] == "ubl_missing_due_date"
    assert body["errors"][0]["pointer"].startswith("/Invoice")


def test_invoice_payable_to_a_factor_is_recorded_and_never_fundable(api, qvk_montage) -> None:
    response = api.post(
        UBL, _ubl("peppol-bis3-invoice-factoring-assigned.xml"), content_type="application/xml"
    )

    assert response.status_code == 201, response.content
    invoice = Invoice.objects.get(merchant=qvk_montage, ref="7023708")
    assert (invoice.payee_third_party, invoice.payee_name, invoice.order_ref) == (
        True,
        "Likviditet o. Finans AB",
        "",
    )
    assert {"ASSIGNED_ELSEWHERE", "NO_ORDER_LINK"} <= set(_codes(qvk_montage, "7023708"))


def test_order_less_peppol_invoice_is_evidence_until_linked(api, qvk_montage) -> None:
    document = _ubl("peppol-bis3-invoice-usd-with-sek-tax-currency.xml")

    response = api.post(UBL, document, content_type="application/xml")

    assert response.status_code == 201, response.content
    assert Invoice.objects.get(merchant=qvk_montage, ref="800018").order_ref == ""
    assert "NO_ORDER_LINK" in _codes(qvk_montage, "800018")
    link = {
        "type": "invoice.linked",
        "merchant": seller_id(qvk_montage),
        "ref": "800018",
        "occurred_at": "2018-01-27T09:00:00Z",
        "data": {"invoice_ref": "800018", "order_ref": "PO-800"},
    }
    linked = api.post("/api/v1/events", {"events": [link]})
    assert linked.status_code == 201, linked.content
    invoice = Invoice.objects.get(merchant=qvk_montage, ref="800018")
    assert invoice.order_ref == "PO-800"
    codes = _codes(qvk_montage, "800018")
    assert "NO_ORDER_LINK" not in codes and "NO_ORDER" in codes  # PO-800 is not on the ledger

    again = api.post(
        "/api/v1/events",
        {"events": [link | {"ref": "800018-2", "data": {**link["data"], "order_ref": "PO-9"}}]},
    )
    assert again.status_code == 409, again.content
    assert Invoice.objects.get(merchant=qvk_montage, ref="800018").order_ref == "PO-800"


def test_order_given_with_the_upload_links_an_order_less_invoice(api, qvk_montage) -> None:
    document = _ubl("peppol-bis3-invoice-usd-with-sek-tax-currency.xml")

    response = api.post(f"{UBL}?order_ref=PO-800", document, content_type="application/xml")

    assert response.status_code == 201, response.content
    invoice = Invoice.objects.get(merchant=qvk_montage, ref="800018")
    assert invoice.order_ref == "PO-800"
    assert invoice.order_linked_seq == invoice.entry.seq


@pytest.mark.parametrize(
    ("query", "code", "pointer"),
    [
        ("order_ref=%20PO-1", "validation_error", "/order_ref"),
        ("order_ref=PO%01", "validation_error", "/order_ref"),
        ("order_ref=" + "x" * 129, "validation_error", "/order_ref"),
        (
            "order_ref=PO-OTHER",
            "ubl_order_reference_conflict",
            "/Invoice/cac:OrderReference/cbc:ID",
        ),
    ],
)
def test_a_bad_or_conflicting_order_given_with_the_upload_is_422(
    api, swedish_supplier, query, code, pointer
) -> None:
    document = _ubl("peppol-bis3-invoice-2018133-original.xml")

    response = api.post(f"{UBL}?{query}", document, content_type="application/xml")

    assert response.status_code == 422, response.content
    body = json.loads(response.content)
    assert (body["code"], body["errors"][0]["pointer"]) == (code, pointer)
    assert Entry.objects.count() == 0


@pytest.mark.parametrize(
    ("document", "code"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">'
            b'<!ENTITY b "&a;&a;&a;">]><x>&b;</x>',
            "xml_",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
            "xml_",
        ),
        (b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://example.com/x.dtd"><x/>', "xml_"),
        (b"<Invoice><unclosed></Invoice>", "xml_malformed"),
        (b"<x/>", "ubl_unsupported_document"),
    ],
)
def test_hostile_or_foreign_xml_is_refused(api, swedish_supplier, document, code) -> None:
    response = api.post(UBL, document, content_type="application/xml")
    assert response.status_code == 422
    assert json.loads(response.content)["code"].startswith(code)
    assert Entry.objects.count() == 0


def test_oversized_xml_is_413(api, swedish_supplier) -> None:
    document = b"<Invoice>" + b"<a/>" * 300_000 + b"</Invoice>"
    response = api.post(UBL, document, content_type="application/xml")
    assert response.status_code == 413
    assert Entry.objects.count() == 0


def test_ubl_needs_an_xml_content_type(api, swedish_supplier) -> None:
    response = api.post(UBL, _ubl("peppol-bis3-invoice-2018133-original.xml"))
    assert response.status_code == 415


def test_epcis_shipping_and_receiving(api, merchant) -> None:
    path = f"/api/v1/logistics/epcis?merchant={seller_id(merchant)}"
    response = api.post(
        path, _epcis("Example_9.6.1-ObjectEvent.jsonld"), content_type="application/ld+json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert [r["type"] for r in body["receipts"]] == ["shipment.dispatched", "shipment.delivered"]
    assert body["ignored"] == []
    assert set(Shipment.objects.values_list("order_ref", flat=True)) == {"12345678"}


def test_epcis_without_shipment_events_is_422_with_reasons(api, merchant) -> None:
    path = f"/api/v1/logistics/epcis?merchant={seller_id(merchant)}"
    response = api.post(path, _epcis("SensorDataExample1.jsonld"), content_type="application/json")
    assert response.status_code == 422
    assert "inspecting" in json.loads(response.content)["errors"][0]["detail"]
    assert Entry.objects.count() == 0


def test_epcis_needs_one_of_your_merchants(api, merchant, rival) -> None:
    document = _epcis("Example_9.6.1-ObjectEvent.jsonld")
    missing = api.post("/api/v1/logistics/epcis", document, content_type="application/json")
    assert missing.status_code == 422
    foreign = rival.post(
        f"/api/v1/logistics/epcis?merchant={seller_id(merchant)}",
        document,
        content_type="application/json",
    )
    assert foreign.status_code == 404
    assert Entry.objects.count() == 0
