"""Receivables: filters, reasons in words (English and Chinese), evidence, the receipt."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.urls import reverse
from django.utils import translation

from financing.eligibility import Code, Reason, Verdict
from portal.receivables.reasons import REASONS, reasons_in_words
from portal.receivables.selectors import ReceivableFilter, receivables_for_merchant
from tests.financing.conftest import TODAY
from tests.portal.conftest import Scenario, portal_sign_in


def test_every_eligibility_code_has_a_sentence() -> None:
    assert set(REASONS) == set(Code)


def test_reasons_read_as_sentences_in_both_languages() -> None:
    verdict = Verdict(
        ref="INV-1",
        order_ref="ORD-9",
        currency="EUR",
        face_minor=100,
        issue_date=TODAY,
        due_date=TODAY,
        debtor_name="Acme",
        debtor_key="k",
        fingerprint="f",
        reasons=(Reason(Code.NO_DELIVERY, "x"), Reason(Code.NO_FACILITY, "y")),
    )
    with translation.override("en"):
        assert reasons_in_words(verdict) == [
            "The goods of order ORD-9 have not been delivered yet.",
            "You have no credit line in EUR with the bank.",
        ]
    with translation.override("zh-hans"):
        assert reasons_in_words(verdict) == [
            "订单 ORD-9 的货物尚未送达。",
            "您在银行没有 EUR 授信额度。",
        ]


@pytest.mark.django_db
def test_filters(scenario: Scenario) -> None:
    def refs(**filters: object) -> set[str]:
        rows = receivables_for_merchant(
            merchant=scenario.a, today=TODAY, filters=ReceivableFilter(**filters)
        )
        return {row.ref for row in rows}

    assert refs(eligible=True) == set(scenario.eligible)
    assert scenario.ineligible in refs(eligible=False)
    assert refs(status="financed") == {scenario.financed[1]}
    assert refs(status="paid") == {scenario.financed[0]}
    assert refs(due_to=TODAY.replace(day=25)) == set(scenario.financed)


@pytest.mark.django_db
def test_the_list_says_why_in_words_not_codes(scenario: Scenario) -> None:
    client = portal_sign_in(scenario.user_a)
    page = client.get(reverse("portal:receivables"), {"eligible": "no"}).content.decode()
    assert "have not been delivered yet" in page
    assert "NO_DELIVERY" not in page
    assert scenario.eligible[0] not in page
    fragment = client.get(
        reverse("portal:receivables"), {"status": "paid"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "<html" not in fragment and scenario.financed[0] in fragment


@pytest.mark.django_db
def test_pages_of_twenty_five(scenario: Scenario, trade) -> None:
    trade.fundable(30, amount="10.00")
    client = portal_sign_in(scenario.user_a)
    first = client.get(reverse("portal:receivables")).content.decode()
    assert "Page 1 of 2" in first
    second = client.get(reverse("portal:receivables"), {"page": 2}).content.decode()
    assert "Page 2 of 2" in second


@pytest.mark.django_db
def test_the_evidence_timeline_is_verified_step_by_step(scenario: Scenario) -> None:
    client = portal_sign_in(scenario.user_a)
    response = client.get(reverse("portal:receivable", args=[scenario.financed[0]]))
    detail = response.context["detail"]
    types = [entry.type for entry in detail.evidence]
    assert types[:4] == [
        "order.placed",
        "invoice.issued",
        "shipment.dispatched",
        "shipment.delivered",
    ]
    assert {"receivable.assigned", "payout.settled", "receivable.settled"} <= set(types)
    assert detail.verified
    page = response.content.decode()
    assert page.count("✓ verified") == len(types)


@pytest.mark.django_db
def test_the_receipt_lets_anyone_recompute_each_hash(scenario: Scenario) -> None:
    client = portal_sign_in(scenario.user_a)
    response = client.get(reverse("portal:receivable_receipt", args=[scenario.financed[0]]))
    assert response["Content-Disposition"].startswith("attachment;")
    receipt = json.loads(response.content)
    assert receipt["merchant"] == scenario.a.public_id
    assert receipt["verified"] is True
    for entry in receipt["entries"]:
        assert hashlib.sha256(entry["body"].encode()).hexdigest() == entry["hash"]
        assert json.loads(entry["body"])["prev"] == entry["prev_hash"]
        assert json.loads(entry["body"])["seq"] == entry["seq"]
