"""Every operation of the schema, asked by marketplace A about marketplace B's merchant: 404.

The matrix says, for each operation, where a request names a merchant (the events' `merchant`,
the `seller_id` path parameter, EPCIS's `?merchant=`, the UBL supplier's tax id) and how to
build an otherwise valid request around that name. A's own merchant gets 200/201 from the same
request, and B's merchant gets the very answer a merchant that never existed gets, so the 404
is the tenancy boundary and not an oracle. An operation missing from the matrix fails the run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from django.test import Client
from django.utils import timezone

from ledger.log.sequencer import log_sequence_all
from ledger.models import Chain, Entry, IdempotentRequest
from merchants.models import Merchant
from merchants.services import merchant_onboard
from tests.api.conftest import SignedClient, order_event, seller_id
from tests.conftest import shared_format

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"
# The supplier's VAT number in the Peppol example; the document names its merchant by it.
PEPPOL_SUPPLIER_TAX_ID = "SE123456789001"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: bytes = b""
    content_type: str = "application/json"

    def send(self, client: SignedClient) -> Any:
        if self.method == "GET":
            return client.get(self.path)
        return client.post(self.path, self.body, content_type=self.content_type)


@dataclass(frozen=True)
class Naming:
    """How an operation names a merchant (by seller id or by tax id) and builds the rest."""

    by: str  # "seller_id" or "tax_id"
    build: Callable[[str], Call]
    ok: int  # what the merchant's own marketplace gets


def _seller(value: str) -> str:
    return quote(value, safe="")


def _events(seller: str) -> Call:
    event = order_event_named(seller, "ORD-T1")
    return Call("POST", "/api/v1/events", json.dumps({"events": [event]}).encode())


def _ubl(tax_id: str) -> Call:
    document = shared_format("ubl-invoice", "peppol-bis3-invoice-2018133-original.xml")
    body = document.read_bytes().replace(PEPPOL_SUPPLIER_TAX_ID.encode(), tax_id.encode())
    assert tax_id == PEPPOL_SUPPLIER_TAX_ID or body != document.read_bytes()
    return Call("POST", "/api/v1/invoices/ubl", body, "application/xml")


def _epcis(seller: str) -> Call:
    document = shared_format("epcis", "Example_9.6.1-ObjectEvent.jsonld").read_bytes()
    path = f"/api/v1/logistics/epcis?{urlencode({'merchant': seller})}"
    return Call("POST", path, document, "application/ld+json")


MATRIX: dict[tuple[str, str], Naming] = {
    ("POST", "/api/v1/events"): Naming("seller_id", _events, 201),
    ("POST", "/api/v1/invoices/ubl"): Naming("tax_id", _ubl, 201),
    ("POST", "/api/v1/logistics/epcis"): Naming("seller_id", _epcis, 201),
    ("GET", "/api/v1/merchants/{seller_id}/chain"): Naming(
        "seller_id", lambda s: Call("GET", f"/api/v1/merchants/{_seller(s)}/chain"), 200
    ),
    ("GET", "/api/v1/merchants/{seller_id}/entries"): Naming(
        "seller_id",
        lambda s: Call("GET", f"/api/v1/merchants/{_seller(s)}/entries?after_seq=0&limit=10"),
        200,
    ),
    ("GET", "/api/v1/merchants/{seller_id}/entries/{seq}"): Naming(
        "seller_id", lambda s: Call("GET", f"/api/v1/merchants/{_seller(s)}/entries/1"), 200
    ),
    ("GET", "/api/v1/proofs/inclusion"): Naming(
        "seller_id",
        lambda s: Call("GET", f"/api/v1/proofs/inclusion?{urlencode({'merchant': s, 'seq': 1})}"),
        200,
    ),
}


# Operations that never name a merchant: merchant keys act for their own merchant only, and the
# receivables list answers each key with its own party's data. Their tenancy tests live here:
TESTED_ELSEWHERE = {
    ("POST", "/api/v1/advances/quote"): "tests/financing/test_api.py",
    ("POST", "/api/v1/advances"): "tests/financing/test_api.py",
    ("GET", "/api/v1/advances/{ref}"): "tests/financing/test_api.py",
    ("POST", "/api/v1/advances/{ref}/accept"): "tests/financing/test_quotes_api.py",
    ("POST", "/api/v1/advances/{ref}/withdraw"): "tests/financing/test_quotes_api.py",
    ("GET", "/api/v1/receivables"): "tests/financing/test_api.py",
    # A report names the caller's own payouts; a job is seen by its uploader only (a report's
    # by its marketplace, a statement import's by the bank: both files test it).
    ("POST", "/api/v1/settlement-reports"): (
        "tests/financing/reconciliation/test_settlement_report_jobs.py"
    ),
    (
        "GET",
        "/api/v1/jobs/{job_id}",
    ): "tests/financing/reconciliation/test_bank_statements.py",
    # Bank keys only: marketplaces and merchants get 403 there.
    ("POST", "/api/v1/bank-statements"): "tests/financing/reconciliation/test_bank_statements.py",
    # The log's tree heads and proofs between them name no entry; any key reads them.
    ("GET", "/api/v1/checkpoint"): "tests/ledger/log/test_api.py",
    ("GET", "/api/v1/proofs/consistency"): "tests/ledger/log/test_api.py",
    ("POST", "/api/v1/checkpoint/cosignatures"): "tests/ledger/log/test_api.py",
}


def order_event_named(seller: str, ref: str) -> dict[str, Any]:
    return {
        "type": "order.placed",
        "merchant": seller,
        "ref": ref,
        "occurred_at": "2026-09-30T12:00:00Z",
        "data": {"currency": "EUR", "amount": "1500.00"},
    }


@dataclass
class Tenants:
    api: SignedClient  # marketplace A, asking
    ours: Merchant  # A's merchant
    theirs: Merchant  # B's merchant

    def name(self, merchant: Merchant | None, naming: Naming) -> str:
        if merchant is None:  # a merchant that exists nowhere
            return "nobody-at-all" if naming.by == "seller_id" else "FI99999999"
        return seller_id(merchant) if naming.by == "seller_id" else merchant.tax_id


def _state() -> tuple[int, int, list[tuple[int, int, str]]]:
    chains = list(Chain.objects.order_by("pk").values_list("pk", "head_seq", "head_hash"))
    return Entry.objects.count(), IdempotentRequest.objects.count(), chains


@pytest.fixture
def tenants(api, rival, make_merchant) -> Tenants:
    ours = make_merchant()
    theirs = merchant_onboard(
        legal_name="Produktionsbolaget Sverige AB",
        country="SE",
        tax_id=PEPPOL_SUPPLIER_TAX_ID,
        marketplace=rival.marketplace,
        seller_id="b-seller-1",
    )
    # Both merchants have entries, so seq 1 exists whichever one a request names.
    for client, merchant in ((api, ours), (rival, theirs)):
        events = [order_event(merchant, "ORD-1"), order_event(merchant, "ORD-2")]
        response = client.post("/api/v1/events", {"events": events})
        assert response.status_code == 201, response.content
    log_sequence_all(now=timezone.now())  # so inclusion proofs exist for both
    return Tenants(api, ours, theirs)


def test_every_schema_operation_has_a_matrix_entry(client: Client) -> None:
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    operations = {
        (method.upper(), path)
        for path, item in json.loads(response.content)["paths"].items()
        for method in item
        if method in ("get", "put", "post", "patch", "delete", "head", "options", "trace")
    }
    assert operations, "the schema lists no operations"
    covered = set(MATRIX) | set(TESTED_ELSEWHERE)
    assert operations - covered == set(), "operations without a tenancy matrix entry"
    assert covered - operations == set(), "matrix entries for operations that do not exist"


@pytest.mark.parametrize("operation", sorted(MATRIX), ids=" ".join)
def test_another_marketplaces_merchant_does_not_exist(tenants, operation) -> None:
    naming = MATRIX[operation]
    before = _state()

    foreign = naming.build(tenants.name(tenants.theirs, naming)).send(tenants.api)
    assert foreign.status_code == 404, foreign.content
    assert foreign["Content-Type"] == PROBLEM
    assert json.loads(foreign.content)["code"] == "merchant_not_found"
    assert _state() == before, "a refused request wrote something"

    # Indistinguishable from a merchant that exists nowhere: no existence oracle.
    nobody = naming.build(tenants.name(None, naming)).send(tenants.api)
    assert (nobody.status_code, nobody.content) == (foreign.status_code, foreign.content)
    assert _state() == before

    # The same request about A's own merchant goes through, so the 404 is the boundary.
    own = naming.build(tenants.name(tenants.ours, naming)).send(tenants.api)
    assert own.status_code == naming.ok, own.content
    if naming.ok == 200:
        assert _state() == before


UNSTORABLE = {"nul": "b-seller\x00-1", "surrogate": "\ud800"}


def _unstorable_cases() -> list[Any]:
    cases = []
    for operation, naming in sorted(MATRIX.items()):
        if naming.by != "seller_id":
            continue  # XML cannot carry NUL or lone surrogates; the parser refuses them
        for label, value in UNSTORABLE.items():
            if label == "surrogate" and operation[1] != "/api/v1/events":
                continue  # not encodable in a URL; only JSON can carry a lone surrogate
            cases.append(pytest.param(operation, value, id=f"{' '.join(operation)}-{label}"))
    return cases


@pytest.mark.parametrize(("operation", "value"), _unstorable_cases())
def test_a_seller_id_that_cannot_be_stored_is_not_found(tenants, operation, value) -> None:
    naming = MATRIX[operation]
    http = Client(raise_request_exception=False)  # the 500 as a response, not an exception
    api = SignedClient(http, tenants.api.marketplace, tenants.api.key, tenants.api.secret)
    before = _state()
    response = naming.build(value).send(api)
    assert response.status_code == 404, response.content
    assert json.loads(response.content)["code"] == "merchant_not_found"
    assert _state() == before
