"""A NUL (or another control character) names nothing: every endpoint refuses it the same way.

PostgreSQL cannot store a NUL in text, so a query that carries one fails with a DataError: the
merchant endpoints answered 500 until their input went through config.api.inputs, as the
ledger's always did. Now a body field or query parameter gets 422 with a pointer at it, and a
path segment 404, whichever API and whichever kind of key.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client

from merchants.models import Merchant
from tests.api.conftest import SignedClient, merchant_signed_client, seller_id

pytestmark = pytest.mark.django_db

IN_URLS = ["\x00", "\x1f", "\x7f", "\u202e"]
# A lone surrogate can come only in JSON (as an escape): in a URL it decodes to U+FFFD.
BAD = [*IN_URLS, "\ud800"]
PROBLEM = "application/problem+json"


def _lenient(client: SignedClient) -> SignedClient:
    """The same credential on a client that hands back a 500 instead of raising it."""
    http = Client(raise_request_exception=False)
    return SignedClient(http, client.marketplace, client.key, client.secret, client.merchant)


@pytest.fixture
def as_merchant(merchant: Merchant) -> SignedClient:
    return _lenient(merchant_signed_client(merchant))


@pytest.fixture
def as_marketplace(api: SignedClient) -> SignedClient:
    return _lenient(api)


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    document: dict[str, Any] = json.loads(response.content)
    return document


def _q(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("path", ["/api/v1/advances/quote", "/api/v1/advances"])
def test_an_invoice_ref_with_a_control_character_is_a_422_at_it(
    as_merchant: SignedClient, path: str, bad: str
) -> None:
    body = json.dumps({"receivables": ["INV-1", f"INV{bad}2"]}).encode()  # \ud800 as an escape

    problem = _problem(as_merchant.post(path, body), 422)

    assert problem["code"] == "validation_error"
    assert [e["pointer"] for e in problem["errors"]] == ["/receivables/1"]


@pytest.mark.parametrize("bad", IN_URLS)
def test_an_advance_ref_with_a_control_character_does_not_exist(
    as_merchant: SignedClient, bad: str
) -> None:
    problem = _problem(as_merchant.get(f"/api/v1/advances/adv_{_q(bad)}"), 404)

    assert problem["code"] == "advance_not_found"


@pytest.mark.parametrize("bad", IN_URLS)
@pytest.mark.parametrize("kind", ["merchant", "marketplace"])
def test_a_receivables_cursor_with_a_control_character_is_a_422_at_it(
    as_merchant: SignedClient, as_marketplace: SignedClient, kind: str, bad: str
) -> None:
    client = as_merchant if kind == "merchant" else as_marketplace

    for query in (f"after=INV{_q(bad)}", f"limit=1{_q(bad)}"):
        problem = _problem(client.get(f"/api/v1/receivables?{query}"), 422)
        assert problem["code"] == "validation_error"
        assert [e["pointer"] for e in problem["errors"]] == [f"/{query.partition('=')[0]}"]


@pytest.mark.parametrize("after", ["²", "١", "abc", "-1", str(2**62 + 1)])
def test_a_marketplace_cursor_is_a_number(as_marketplace: SignedClient, after: str) -> None:
    """A marketplace's cursor is the last row's; a Unicode digit once passed isdigit() to 500."""
    problem = _problem(as_marketplace.get(f"/api/v1/receivables?after={_q(after)}"), 422)

    assert [e["pointer"] for e in problem["errors"]] == ["/after"]


def test_a_merchant_cursor_is_any_ref(as_merchant: SignedClient) -> None:
    response = as_merchant.get("/api/v1/receivables?after=INV-2026%2F00042")

    assert response.status_code == 200, response.content


@pytest.mark.parametrize("bad", BAD)
def test_the_ledger_endpoints_refuse_them_the_same_way(
    as_marketplace: SignedClient, merchant: Merchant, bad: str
) -> None:
    """What the merchant endpoints now match: 422 at a body field or query parameter, 404 for
    a path segment (or a seller id: it names no merchant of yours)."""
    seller = seller_id(merchant)
    event = {
        "type": "order.placed",
        "merchant": seller,
        "ref": f"ORD{bad}1",
        "occurred_at": "2026-09-30T12:00:00Z",
        "data": {"currency": "EUR", "amount": "15.00"},
    }
    posted = as_marketplace.post("/api/v1/events", json.dumps({"events": [event]}).encode())
    problem = _problem(posted, 422)
    assert [e["pointer"] for e in problem["errors"]] == ["/events/0/ref"]

    query = f"/api/v1/merchants/{seller}/entries?after_seq=1{_q(bad)}"
    problem = _problem(as_marketplace.get(query), 422)
    assert [e["pointer"] for e in problem["errors"]] == ["/after_seq"]

    if bad in IN_URLS:
        _problem(as_marketplace.get(f"/api/v1/merchants/{_q(bad)}/chain"), 404)
