"""One tax-id normaliser: supplier matching, the UBL parser and the invoice fingerprint agree."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from importlib import import_module
from typing import Any
from xml.sax.saxutils import escape

import pytest
from django.apps import apps
from hypothesis import given
from hypothesis import strategies as st

from financing.fingerprint import invoice_fingerprint
from financing.models import Receivable
from ledger.formats.ubl import ubl_parse
from ledger.selectors import merchant_for_tax_ids
from merchants.identifiers import (
    _alnum_only,
    _unicode_fold,
    identifier_fold,
    tax_id_is_national,
    tax_id_is_own,
    tax_id_normalise,
)
from merchants.models import Marketplace, Merchant
from tests.financing.conftest import Trade
from tests.ledger.formats.test_ubl import ubl

CANONICAL = "DE300000001"
# One German tax id as merchants type it, invoices name it and UBL documents carry it.
SPELLINGS = [
    "DE300000001",
    "DE 300 000 001",
    "de300000001",
    "de-300.000.001",
    "DE/300_000:001",
    "300000001",  # bare: the merchant's country says which
    "300 000 001",
    "300.000.001",
    "ＤＥ３０００００００１",  # full width
    "DЕ300000001",  # Cyrillic capital IE
    "DE\u200b300\u00a0000\u2010001",  # zero-width space, no-break space, hyphen
]


def _invoice_data(supplier_tax_id: str) -> dict[str, Any]:
    return {
        "currency": "EUR",
        "amount": "1000.00",
        "order_ref": "ORD-1",
        "issue_date": "2026-05-01",
        "due_date": "2026-06-01",
        "debtor": {"kind": "marketplace", "name": "Acme Marketplace"},
        "supplier_tax_id": supplier_tax_id,
    }


def _supplier_document(company_id: str) -> bytes:
    """A UBL invoice whose supplier is known by ``company_id`` alone."""
    party = (
        "<cac:AccountingSupplierParty><cac:Party>"
        "<cac:PartyName><cbc:Name>Supplier GmbH</cbc:Name></cac:PartyName>"
        f"<cac:PartyTaxScheme><cbc:CompanyID>{escape(company_id)}</cbc:CompanyID>"
        "<cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>"
        "</cac:Party></cac:AccountingSupplierParty>"
    )
    return ubl(supplier=party)


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_spelling_normalises_to_one_tax_id(spelling: str) -> None:
    assert tax_id_normalise(spelling, country="DE") == CANONICAL
    assert tax_id_normalise(tax_id_normalise(spelling), country="DE") == CANONICAL


@pytest.mark.parametrize(
    ("tax_id", "country", "normalised"),
    [
        ("300000001", "", "300000001"),  # no country: stays bare
        ("300000001", "FR", "FR300000001"),
        ("123456789", "GR", "EL123456789"),  # Greece's VAT prefix is EL
        ("DE300000001", "FR", "DE300000001"),  # a qualified id keeps its own country
        ("820098395B01", "NL", "NL820098395B01"),
        ("", "DE", ""),
        (" - ", "DE", ""),
    ],
)
def test_a_country_qualifies_only_a_bare_number(tax_id: str, country: str, normalised: str) -> None:
    assert tax_id_normalise(tax_id, country=country) == normalised


def test_a_bare_number_is_national() -> None:
    assert tax_id_is_national("300 000 001") and tax_id_is_national("０１２")
    assert not tax_id_is_national("de 300 000 001") and not tax_id_is_national(" - ")


@pytest.mark.django_db
@pytest.mark.parametrize("onboarded_as", SPELLINGS)
def test_supplier_matching_the_ubl_parser_and_the_fingerprint_agree(
    onboarded_as: str,
    marketplace: Marketplace,
    make_merchant: Callable[..., Merchant],
    now: datetime,
) -> None:
    merchant = make_merchant(country="DE", tax_id=onboarded_as)
    make_merchant(country="DE", tax_id="DE300000002")  # a neighbour that must never match
    assert merchant.tax_id_normalised == CANONICAL

    for named_as in SPELLINGS:
        supplier_ids = ubl_parse(_supplier_document(named_as)).supplier_ids
        assert {tax_id_normalise(i, country="DE") for i in supplier_ids} == {CANONICAL}, named_as
        found = merchant_for_tax_ids(marketplace=marketplace, tax_ids=supplier_ids)
        assert found == merchant, named_as
        assert tax_id_is_own(named_as, own_normalised=merchant.tax_id_normalised, country="DE")

    # The projector fingerprints by the merchant's identity, whichever spelling the invoice
    # names (each is accepted as the merchant's own) and when it names none.
    trade = Trade(merchant=merchant, source=marketplace.code, now=now)
    trade.invoice("INV-000", "ORD-1")
    for n, named_as in enumerate(SPELLINGS, 1):
        trade.append("invoice.issued", f"INV-{n:03d}", _invoice_data(named_as))
    for ref, fingerprint in Receivable.objects.filter(merchant=merchant).values_list(
        "ref", "fingerprint"
    ):
        assert fingerprint == invoice_fingerprint(supplier=CANONICAL, invoice_number=ref), ref


@pytest.mark.django_db
def test_a_bare_number_is_matched_only_in_the_merchants_own_country(
    marketplace: Marketplace, make_merchant: Callable[..., Merchant]
) -> None:
    french = make_merchant(country="FR", tax_id="300000001")
    # Qualified by another country than its own: a bare number is not this merchant's.
    make_merchant(country="NL", tax_id="DE300000001", legal_name="AAA first by name")

    assert french.tax_id_normalised == "FR300000001"
    assert merchant_for_tax_ids(marketplace=marketplace, tax_ids=["300 000 001"]) == french
    assert merchant_for_tax_ids(marketplace=marketplace, tax_ids=["FR300000001"]) == french
    assert merchant_for_tax_ids(marketplace=marketplace, tax_ids=["BE300000001"]) is None
    assert merchant_for_tax_ids(marketplace=marketplace, tax_ids=["", " - "]) is None


@pytest.mark.django_db
def test_saving_a_new_tax_id_or_country_renormalises(merchant: Merchant) -> None:
    merchant.tax_id = "300 000 009"
    merchant.save(update_fields=["tax_id"])
    merchant.country = "AT"
    merchant.save(update_fields=["country"])

    assert Merchant.objects.get(pk=merchant.pk).tax_id_normalised == "AT300000009"


@pytest.mark.django_db
def test_the_migrations_fill_and_recompute_what_the_code_now_computes(
    marketplace: Marketplace, make_merchant: Callable[..., Merchant], now: datetime
) -> None:
    bare = make_merchant(country="DE", tax_id="300000001")
    qualified = make_merchant(country="DE", tax_id="DE300000002")
    for merchant in (bare, qualified):
        Trade(merchant=merchant, source=marketplace.code, now=now).invoice("INV-1", "ORD-1")
    expected = dict(Receivable.objects.values_list("merchant_id", "fingerprint"))
    # As before the migrations: no normalised column, bare tax ids fingerprinted bare.
    Merchant.objects.update(tax_id_normalised="")
    Receivable.objects.filter(merchant=bare).update(fingerprint="0" * 64)

    import_module("merchants.migrations.0004_merchant_tax_id_normalised").normalise_tax_ids(
        apps, None
    )
    import_module("financing.migrations.0004_invoice_identity").recompute_fingerprints(apps, None)

    assert dict(Merchant.objects.values_list("pk", "tax_id_normalised")) == {
        bare.pk: "DE300000001",
        qualified.pk: "DE300000002",
    }
    assert dict(Receivable.objects.values_list("merchant_id", "fingerprint")) == expected


# Identifiers are nearly always ASCII, and the append path folds several per invoice, so ASCII
# takes a short way; these hold it to the full Unicode way, character for character.
@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_folds_as_the_unicode_way_would(text: str) -> None:
    assert identifier_fold(text) == _unicode_fold(text)


@given(st.text())
def test_letters_and_digits_are_kept_as_isalnum_says(text: str) -> None:
    for spelling in (text, text.encode("ascii", "ignore").decode()):
        assert _alnum_only(spelling) == "".join(ch for ch in spelling if ch.isalnum())
