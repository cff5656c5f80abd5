"""UBL invoices and EPCIS logistics documents over HTTP: matched to merchants, safely parsed."""

from __future__ import annotations

import json

import pytest

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


def test_ubl_refusal_names_the_reason(api, swedish_supplier) -> None:
    response = api.post(
        UBL, _ubl("peppol-bis3-invoice-factoring-assigned.xml"), content_type="application/xml"
    )
    assert response.status_code == 422
    body = json.loads(response.content)
    assert body["code"] == "ubl_assigned_to_third_party"
    assert body["errors"][0]["pointer"].startswith("/Invoice")


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
