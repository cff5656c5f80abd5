"""The merchant API for price certainty (issue 8, item 9): quotes name their price and expiry,
a requote is accepted by its terms_hash, a request is withdrawn; each for its own merchant only."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from financing.models import Advance, Facility
from financing.services.decisions import advance_approve
from financing.services.quotes import advance_requote_send
from merchants.models import Marketplace, Merchant
from tests.api.conftest import SignedClient, merchant_signed_client, signed_client
from tests.financing.conftest import Trade

pytestmark = pytest.mark.django_db


@pytest.fixture
def funded(verified_merchant: Merchant, marketplace: Marketplace, open_facility: Any) -> Trade:
    now = timezone.now()
    trade = Trade(verified_merchant, marketplace.code, now=now, today=now.date())
    open_facility(verified_merchant)
    return trade


@pytest.fixture
def client(verified_merchant: Merchant) -> SignedClient:
    return merchant_signed_client(verified_merchant)


def _problem(response: Any) -> dict[str, Any]:
    assert response["Content-Type"] == "application/problem+json", response.content
    body: dict[str, Any] = json.loads(response.content)
    return body


def _requested(funded: Trade, client: SignedClient) -> dict[str, Any]:
    response = client.post("/api/v1/advances", {"receivables": funded.fundable(1)})
    assert response.status_code == 201, response.content
    body: dict[str, Any] = response.json()
    return body


def test_a_quote_names_its_price_its_day_and_its_expiry(
    funded: Trade, client: SignedClient
) -> None:
    refs = funded.fundable(1)

    quote = client.post("/api/v1/advances/quote", {"receivables": refs}).json()

    assert len(quote["terms_hash"]) == 64
    assert quote["priced_on"] == funded.today.isoformat()
    assert quote["expires_at"].startswith(funded.today.isoformat() + "T23:59:59")
    accepted = client.post(
        "/api/v1/advances", {"receivables": refs, "terms_hash": quote["terms_hash"]}
    )
    assert accepted.status_code == 201, accepted.content
    assert accepted.json()["quote"] == {
        "terms_hash": quote["terms_hash"],
        "priced_on": quote["priced_on"],
        "expires_at": quote["expires_at"],
        "accepted": True,
    }


def test_a_request_naming_another_price_is_a_409_and_writes_nothing(
    funded: Trade, client: SignedClient
) -> None:
    response = client.post(
        "/api/v1/advances", {"receivables": funded.fundable(1), "terms_hash": "0" * 64}
    )

    assert response.status_code == 409
    assert _problem(response)["code"] == "quote_changed"
    assert not Advance.objects.exists()


def test_a_requote_shows_its_pending_price_and_is_accepted_by_its_hash(
    funded: Trade, client: SignedClient
) -> None:
    ref = _requested(funded, client)["ref"]
    Facility.objects.update(annual_rate_bp=2400)
    advance_requote_send(advance=Advance.objects.get(ref=ref), now=timezone.now(), reason="Rates")

    pending = client.get(f"/api/v1/advances/{ref}").json()
    assert pending["status"] == "requote" and pending["quote"]["accepted"] is False
    wrong = client.post(f"/api/v1/advances/{ref}/accept", {"terms_hash": "a" * 64})
    assert (wrong.status_code, _problem(wrong)["code"]) == (409, "quote_changed")
    accepted = client.post(
        f"/api/v1/advances/{ref}/accept",
        {"terms_hash": pending["quote"]["terms_hash"]},
        idempotency_key="accept-1",
    )

    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["status"] == "requested"
    assert accepted.json()["quote"]["accepted"] is True
    assert accepted.json()["fee"] == pending["fee"]


@pytest.mark.parametrize(
    ("body", "pointer"),
    [({}, ""), ({"terms_hash": "XYZ"}, "/terms_hash"), ({"terms_hash": 7}, "/terms_hash")],
)
def test_a_malformed_acceptance_is_a_field_level_422(
    funded: Trade, client: SignedClient, body: dict[str, Any], pointer: str
) -> None:
    ref = _requested(funded, client)["ref"]

    response = client.post(f"/api/v1/advances/{ref}/accept", body)

    assert response.status_code == 422
    assert pointer in [e["pointer"] for e in _problem(response)["errors"]]


def test_accepting_with_nothing_pending_is_a_409(funded: Trade, client: SignedClient) -> None:
    ref = _requested(funded, client)["ref"]

    response = client.post(f"/api/v1/advances/{ref}/accept", {"terms_hash": "b" * 64})

    assert (response.status_code, _problem(response)["code"]) == (409, "wrong_state")


def test_a_withdrawal_releases_the_receivables_and_replays(
    funded: Trade, client: SignedClient
) -> None:
    advance = _requested(funded, client)

    first = client.post(
        f"/api/v1/advances/{advance['ref']}/withdraw", {"reason": "Paid early"}, idempotency_key="w"
    )

    assert first.status_code == 200, first.content
    assert first.json()["status"] == "withdrawn"
    # The reason is the officers' record; the API shows the merchant only the bank's note to it.
    assert Advance.objects.get(ref=advance["ref"]).decision_note == (
        "Withdrawn by the merchant. Paid early"
    )
    assert first.json()["merchant_note"] == ""
    assert "decision_note" not in first.json()
    assert [r["status"] for r in first.json()["receivables"]] == ["released"]
    assert Facility.objects.get().committed_minor == 0


def test_the_api_shows_the_merchant_the_banks_note_to_it_never_the_internal_one(
    funded: Trade, client: SignedClient, officer: User
) -> None:
    advance = Advance.objects.get(ref=_requested(funded, client)["ref"])
    advance_approve(
        advance=advance,
        officer=officer,
        now=timezone.now(),
        note="Internal: debtor on the watch list",
        merchant_note="Approved; paid out today.",
    )

    shown = client.get(f"/api/v1/advances/{advance.ref}").json()

    assert shown["merchant_note"] == "Approved; paid out today."
    assert "Internal" not in json.dumps(shown)


def test_another_merchants_advance_cannot_be_accepted_or_withdrawn(
    funded: Trade, client: SignedClient, make_merchant: Callable[..., Merchant]
) -> None:
    ref = _requested(funded, client)["ref"]
    me = make_merchant()
    mine = merchant_signed_client(me)

    for action, body in (("accept", {"terms_hash": "c" * 64}), ("withdraw", {})):
        response = mine.post(f"/api/v1/advances/{ref}/{action}", body)
        assert response.status_code == 404, response.content
        assert _problem(response)["code"] == "advance_not_found"
    assert Advance.objects.get(ref=ref).status == Advance.Status.REQUESTED


def test_a_marketplace_key_cannot_withdraw(
    funded: Trade, client: SignedClient, marketplace: Marketplace
) -> None:
    ref = _requested(funded, client)["ref"]

    response = signed_client(marketplace).post(f"/api/v1/advances/{ref}/withdraw", {})

    assert (response.status_code, _problem(response)["code"]) == (403, "credential_scope")
