"""The financing API end to end: signed merchant keys quote and request; marketplaces read."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from financing.models import Advance, Assignment, Facility
from financing.services.decisions import advance_approve
from merchants.models import Marketplace, Merchant
from merchants.services import marketplace_create
from tests.api.conftest import SignedClient, merchant_signed_client, signed_client
from tests.financing.conftest import Trade

pytestmark = pytest.mark.django_db


@pytest.fixture
def live_trade(verified_merchant: Merchant, marketplace: Marketplace) -> Trade:
    """Evidence dated from the real clock, since the API prices against today."""
    now = timezone.now()
    return Trade(verified_merchant, marketplace.code, now=now, today=now.date())


@pytest.fixture
def funded(live_trade: Trade, open_facility: Callable[..., Facility]) -> Trade:
    open_facility(live_trade.merchant)
    return live_trade


@pytest.fixture
def client(verified_merchant: Merchant) -> SignedClient:
    return merchant_signed_client(verified_merchant)


def _problem(response: Any) -> dict[str, Any]:
    assert response["Content-Type"] == "application/problem+json", response.content
    body: dict[str, Any] = json.loads(response.content)
    return body


def test_a_quote_prices_and_writes_nothing(funded: Trade, client: SignedClient) -> None:
    refs = funded.fundable(2, amount="1000.00", due_in_days=30)

    response = client.post("/api/v1/advances/quote", {"receivables": refs})

    assert response.status_code == 200, response.content
    quote = response.json()
    assert (quote["face"], quote["advance"], quote["reserve"]) == ("2000.00", "1600.00", "400.00")
    # 800.00 x 18 % x 30 / 360 = 12.00 per invoice
    assert quote["fee"] == "24.00" and quote["net"] == "1576.00"
    assert [item["ref"] for item in quote["receivables"]] == refs
    assert not Advance.objects.exists()


def test_a_request_holds_its_receivables_and_replays(funded: Trade, client: SignedClient) -> None:
    refs = funded.fundable(1)

    first = client.post("/api/v1/advances", {"receivables": refs}, idempotency_key="adv-1")
    again = client.post(  # a retry is signed anew: a signature is accepted once
        "/api/v1/advances",
        {"receivables": refs},
        idempotency_key="adv-1",
        timestamp=int(time.time()) - 1,
    )

    assert first.status_code == 201, first.content
    assert again.content == first.content
    advance = first.json()
    assert advance["status"] == "requested"
    assert [r["status"] for r in advance["receivables"]] == ["held"]
    assert Advance.objects.count() == 1
    detail = client.get(f"/api/v1/advances/{advance['ref']}")
    assert detail.status_code == 200 and detail.json()["ref"] == advance["ref"]


def test_an_ineligible_invoice_is_refused_with_its_codes(
    funded: Trade, client: SignedClient
) -> None:
    good = funded.fundable(1)
    funded.order("ORD-X")
    funded.invoice("INV-X", "ORD-X")  # no delivery

    response = client.post("/api/v1/advances", {"receivables": [*good, "INV-X"]})

    problem = _problem(response)
    assert response.status_code == 422 and problem["code"] == "advance_refused"
    assert [e["pointer"] for e in problem["errors"]] == ["/receivables/1"]
    assert problem["errors"][0]["detail"].startswith("NO_DELIVERY")
    assert not Advance.objects.exists() and not Assignment.objects.exists()


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({}, ""),
        ({"receivables": []}, "/receivables"),
        ({"receivables": "INV-1"}, "/receivables"),
        ({"receivables": [1]}, "/receivables/0"),
        ({"receivables": ["INV-1", "INV-1"]}, "/receivables/1"),
        ({"receivables": ["x" * 129]}, "/receivables/0"),
        ({"receivables": ["INV-1"], "extra": 1}, ""),
        (["INV-1"], ""),
        ({"receivables": ["INV-1", "INV-\x00"]}, "/receivables/1"),
        ({"receivables": [" INV-1"]}, "/receivables/0"),
        ({"receivables": ["INV-\u202e1"]}, "/receivables/0"),
    ],
)
def test_a_malformed_body_gets_a_field_level_422(
    client: SignedClient, body: Any, pointer: str
) -> None:
    response = client.post("/api/v1/advances", body)

    problem = _problem(response)
    assert response.status_code == 422
    assert pointer in [e["pointer"] for e in problem["errors"]]


def test_another_merchants_invoices_and_advances_do_not_exist(
    funded: Trade,
    make_merchant: Callable[..., Merchant],
    open_facility: Callable[..., Facility],
) -> None:
    theirs = funded.fundable(1)
    theirs_advance = merchant_signed_client(funded.merchant).post(
        "/api/v1/advances", {"receivables": theirs}
    )
    me = make_merchant()
    me.kyc_status = Merchant.KycStatus.VERIFIED
    me.save()
    mine = merchant_signed_client(me)

    for path in ("/api/v1/advances/quote", "/api/v1/advances"):
        response = mine.post(path, {"receivables": theirs})
        assert response.status_code == 404, response.content
        assert _problem(response)["errors"][0]["pointer"] == "/receivables/0"
    response = mine.get(f"/api/v1/advances/{theirs_advance.json()['ref']}")
    assert response.status_code == 404
    assert mine.get("/api/v1/receivables").json()["receivables"] == []


def test_a_marketplace_key_cannot_request_advances(funded: Trade, marketplace: Marketplace) -> None:
    response = signed_client(marketplace).post(
        "/api/v1/advances", {"receivables": funded.fundable(1)}
    )

    assert response.status_code == 403
    assert _problem(response)["code"] == "credential_scope"


def test_receivables_show_verdicts_to_the_merchant(funded: Trade, client: SignedClient) -> None:
    [good] = funded.fundable(1)
    funded.order("ORD-R")
    funded.invoice("INV-R", "ORD-R")
    funded.delivered("ORD-R")
    funded.returned("ORD-R")

    rows = {r["ref"]: r for r in client.get("/api/v1/receivables").json()["receivables"]}

    assert rows[good]["eligible"] is True and rows[good]["reasons"] == []
    assert rows["INV-R"]["eligible"] is False
    assert [r["code"] for r in rows["INV-R"]["reasons"]] == ["RETURNED"]


def test_a_marketplace_sees_only_assigned_receivables_it_sent(
    funded: Trade, marketplace: Marketplace, officer: Any
) -> None:
    refs = funded.fundable(2)
    other = marketplace_create(code="othermkt", name="Other Market")
    response = merchant_signed_client(funded.merchant).post(
        "/api/v1/advances", {"receivables": refs[:1]}
    )
    advance_approve(
        advance=Advance.objects.get(ref=response.json()["ref"]), officer=officer, now=funded.now
    )

    ours = signed_client(marketplace).get("/api/v1/receivables").json()["receivables"]
    theirs = signed_client(other).get("/api/v1/receivables").json()["receivables"]

    assert [(r["ref"], r["advance"]) for r in ours] == [(refs[0], response.json()["ref"])]
    assert ours[0]["merchant"] == funded.merchant.links.get().seller_id
    assert ours[0]["pay_to"]["reference"] == response.json()["ref"]
    assert theirs == []
