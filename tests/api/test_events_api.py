"""POST /api/v1/events and the chain reads: receipts, all-or-nothing, problems, idempotency."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from ledger.models import Entry, IdempotentRequest, Invoice
from merchants.services import merchant_onboard
from tests.api.conftest import SignedClient, invoice_event, order_event, seller_id

pytestmark = pytest.mark.django_db
EVENTS = "/api/v1/events"


def problem(response) -> dict:
    assert response["Content-Type"] == "application/problem+json", response.content
    return json.loads(response.content)


def test_batch_gets_receipts_in_input_order(api, merchant, make_merchant) -> None:
    other = make_merchant()
    events = [order_event(merchant), order_event(other, "ORD-9"), invoice_event(merchant)]
    response = api.post(EVENTS, {"events": events})
    assert response.status_code == 201, response.content
    receipts = response.json()["receipts"]
    assert [(r["merchant"], r["merchant_id"], r["seq"], r["ref"], r["type"]) for r in receipts] == [
        (seller_id(merchant), merchant.public_id, 1, "ORD-1", "order.placed"),
        (seller_id(other), other.public_id, 1, "ORD-9", "order.placed"),
        (seller_id(merchant), merchant.public_id, 2, "INV-1", "invoice.issued"),
    ]
    stored = Entry.objects.get(chain=merchant.pk, seq=2)
    assert receipts[2]["hash"] == stored.hash
    assert Invoice.objects.get().amount_minor == 125000
    assert [r["log"] for r in receipts] == [  # where each entry's inclusion proof will be
        f"/api/v1/proofs/inclusion?{urlencode({'merchant': r['merchant'], 'seq': r['seq']})}"
        for r in receipts
    ]


@pytest.mark.postgres
def test_stored_responses_are_compressed_with_lz4() -> None:
    """A 1,000-event batch's receipts are ~260 kB, stored for replays; pglz cost 4 ms each."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attcompression FROM pg_attribute"
            " WHERE attrelid = 'ledger_idempotentrequest'::regclass AND attname = 'response_body'"
        )
        assert cursor.fetchone() == ("l",)


def test_one_bad_event_refuses_the_batch_with_pointers(api, merchant) -> None:
    events = [
        order_event(merchant),
        invoice_event(merchant, amount="12.345"),
        invoice_event(merchant, "INV-2", due_date="2026-02-30"),
    ]
    response = api.post(EVENTS, {"events": events})
    assert response.status_code == 422
    body = problem(response)
    assert body["code"] == "validation_error"
    assert [e["pointer"] for e in body["errors"]] == [
        "/events/1/data/amount",
        "/events/2/data/due_date",
    ]
    assert Entry.objects.count() == 0


def test_conflict_with_the_chain_is_409_and_writes_nothing(api, merchant) -> None:
    api.post(EVENTS, {"events": [order_event(merchant)]})
    response = api.post(
        EVENTS,
        {
            "events": [
                order_event(merchant, "ORD-2"),
                {**order_event(merchant, "ORD-1", "9.00"), "type": "order.cancelled", "data": {}},
            ]
        },
    )
    assert response.status_code == 201  # cancelling ORD-1 is fine
    response = api.post(
        EVENTS,
        {"events": [{**order_event(merchant, "ORD-404"), "type": "order.cancelled", "data": {}}]},
    )
    assert response.status_code == 409
    assert problem(response)["errors"][0]["pointer"] == "/events/0/ref"
    assert Entry.objects.count() == 3


def test_another_marketplaces_merchant_is_404(api, rival, merchant) -> None:
    foreign = merchant_onboard(
        legal_name="Foreign",
        country="FR",
        tax_id="FR1",
        marketplace=rival.marketplace,
        seller_id="foreign-1",
    )
    response = api.post(EVENTS, {"events": [order_event(merchant), order_event(foreign)]})
    assert response.status_code == 404
    assert problem(response)["errors"][0]["pointer"] == "/events/1/merchant"
    assert Entry.objects.count() == 0
    assert api.get(f"/api/v1/merchants/{seller_id(foreign)}/chain").status_code == 404


@pytest.mark.parametrize(
    ("body", "content_type", "status", "fragment"),
    [
        (b'{"events": [], "events": []}', "application/json", 400, b"Duplicate key"),
        (b'{"events": [NaN]}', "application/json", 400, b"NaN"),
        (b"[" * 5000 + b"]" * 5000, "application/json", 400, b"nests deeper"),
        (b'{"events": ' + b"[" * 40 + b"]" * 40 + b"}", "application/json", 400, b"nests deeper"),
        (b"\xff\xfe{}", "application/json", 400, b"not UTF-8"),
        (b'{"events": [', "application/json", 400, b"not valid JSON"),
        (b"events=1", "application/x-www-form-urlencoded", 415, b"unsupported_media_type"),
        (b'{"events": {}}', "application/json", 422, b"1 to 1,000 events"),
        (b'{"events": []}', "application/json", 422, b"1 to 1,000 events"),
        (b'{"events": [1], "extra": 1}', "application/json", 422, b'{\\"events\\": [...]}'),
    ],
)
def test_malformed_bodies_get_clear_problems(api, body, content_type, status, fragment) -> None:
    response = api.post(EVENTS, body, content_type=content_type)
    assert response.status_code == status, response.content
    assert fragment in response.content
    problem(response)
    assert Entry.objects.count() == 0


def test_more_than_a_thousand_events_is_refused(api, merchant) -> None:
    events = [order_event(merchant, f"O-{n}") for n in range(1001)]
    response = api.post(EVENTS, {"events": events})
    assert response.status_code == 422
    assert problem(response)["errors"][0]["pointer"] == "/events"
    assert Entry.objects.count() == 0


def test_oversized_body_is_413(api, settings) -> None:
    settings.API_MAX_BODY_BYTES = 1000
    response = api.post(EVENTS, b'{"events": ["' + b"x" * 2000 + b'"]}')
    assert response.status_code == 413
    assert problem(response)["code"] == "request_too_large"


class TestIdempotency:
    def test_same_key_same_body_replays_byte_for_byte(self, api, merchant) -> None:
        body = {"events": [order_event(merchant)]}
        stamp = int(time.time())
        first = api.post(EVENTS, body, idempotency_key="k-1", timestamp=stamp)
        again = api.post(EVENTS, body, idempotency_key="k-1", timestamp=stamp - 1)
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.content == first.content
        assert again["Idempotent-Replayed"] == "true"
        assert Entry.objects.count() == 1

    def test_same_key_other_body_is_422(self, api, merchant) -> None:
        api.post(EVENTS, {"events": [order_event(merchant)]}, idempotency_key="k-2")
        response = api.post(
            EVENTS, {"events": [order_event(merchant, "O-2")]}, idempotency_key="k-2"
        )
        assert response.status_code == 422
        assert problem(response)["code"] == "idempotency_key_reused"
        assert Entry.objects.count() == 1

    def test_keys_are_scoped_per_marketplace(self, api, rival, merchant) -> None:
        api.post(EVENTS, {"events": [order_event(merchant)]}, idempotency_key="shared")
        response = rival.post(EVENTS, {"events": [order_event(merchant)]}, idempotency_key="shared")
        assert response.status_code == 404  # rival's own attempt, not api's replay

    def test_missing_key_is_400(self, api, merchant) -> None:
        response = api.post(EVENTS, {"events": [order_event(merchant)]}, idempotency_key="")
        assert response.status_code == 400
        assert problem(response)["code"] == "idempotency_key_required"
        assert Entry.objects.count() == 0

    def test_same_key_while_the_first_is_in_flight_is_409(self, api, merchant) -> None:
        body = json.dumps({"events": [order_event(merchant)]}).encode()
        fingerprint = hashlib.sha256(f"POST {EVENTS}\n".encode() + body).hexdigest()
        IdempotentRequest.objects.create(
            scope=f"marketplace:{api.marketplace.pk}",
            key="busy",
            fingerprint=fingerprint,
            claimed_at=timezone.now(),
        )
        response = api.post(EVENTS, body, idempotency_key="busy")
        assert response.status_code == 409
        assert problem(response)["code"] == "request_in_flight"
        assert response["Retry-After"] == "1"
        assert Entry.objects.count() == 0

    def test_a_claim_abandoned_by_a_dead_worker_is_taken_over(self, api, merchant) -> None:
        body = json.dumps({"events": [order_event(merchant)]}).encode()
        fingerprint = hashlib.sha256(f"POST {EVENTS}\n".encode() + body).hexdigest()
        IdempotentRequest.objects.create(
            scope=f"marketplace:{api.marketplace.pk}",
            key="dead",
            fingerprint=fingerprint,
            claimed_at=timezone.now() - timedelta(minutes=6),
        )
        response = api.post(EVENTS, body, idempotency_key="dead")
        assert response.status_code == 201
        assert Entry.objects.count() == 1

    def test_a_refused_request_frees_its_key(self, api, merchant) -> None:
        bad = api.post(
            EVENTS, {"events": [order_event(merchant, amount="1.001")]}, idempotency_key="k-3"
        )
        assert bad.status_code == 422
        good = api.post(EVENTS, {"events": [order_event(merchant)]}, idempotency_key="k-3")
        assert good.status_code == 201
        assert IdempotentRequest.objects.get(key="k-3").state == "done"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sixteen_concurrent_requests_on_one_key_have_one_effect(api, merchant) -> None:
    body = {"events": [order_event(merchant, f"O-{n}") for n in range(50)]}
    barrier = threading.Barrier(16)
    now = int(time.time())  # read once: a clock tick between threads could repeat a stamp

    def send(n: int) -> tuple[int, bytes]:
        client = SignedClient(Client(), api.marketplace, api.key, api.secret)
        stamp = now - n  # sixteen retries, each signed anew
        barrier.wait()
        try:
            response = client.post(EVENTS, body, idempotency_key="race", timestamp=stamp)
            return response.status_code, response.content
        finally:
            connection.close()

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(send, range(16)))
    statuses = sorted(status for status, _ in outcomes)
    assert all(status in (201, 409) for status in statuses), statuses
    assert statuses.count(201) >= 1
    assert len({content for status, content in outcomes if status == 201}) == 1
    assert Entry.objects.count() == 50


class TestReads:
    def test_chain_head_and_paged_entries(self, api, merchant) -> None:
        api.post(EVENTS, {"events": [order_event(merchant, f"O-{n}") for n in range(5)]})
        base = f"/api/v1/merchants/{seller_id(merchant)}"
        head = api.get(f"{base}/chain").json()
        assert (head["seq"], head["count"], head["merchant"], head["merchant_id"]) == (
            5,
            5,
            seller_id(merchant),
            merchant.public_id,
        )
        page = api.get(f"{base}/entries?after_seq=1&limit=2").json()
        assert [e["seq"] for e in page["entries"]] == [2, 3]
        assert page["next_after_seq"] == 3
        last = api.get(f"{base}/entries?after_seq=3&limit=2").json()
        assert [e["seq"] for e in last["entries"]] == [4, 5] and last["next_after_seq"] == 5
        assert api.get(f"{base}/entries?after_seq=5").json() == {
            "entries": [],
            "next_after_seq": None,
        }
        entry = api.get(f"{base}/entries/5").json()
        assert hashlib.sha256(entry["body"].encode()).hexdigest() == entry["hash"] == head["hash"]
        assert api.get(f"{base}/entries/6").status_code == 404

    @pytest.mark.parametrize(
        "query", ["limit=0", "limit=1001", "limit=x", "after_seq=-1", "limit=١"]
    )
    def test_bad_paging_is_422(self, api, merchant, query) -> None:
        response = api.get(f"/api/v1/merchants/{seller_id(merchant)}/entries?{query}")
        assert response.status_code == 422
        problem(response)

    def test_empty_chain(self, api, merchant) -> None:
        head = api.get(f"/api/v1/merchants/{seller_id(merchant)}/chain").json()
        assert (head["seq"], head["hash"]) == (0, "0" * 64)

    def test_unknown_route_is_a_problem(self, api) -> None:
        response = api.get("/api/v1/nothing-here")
        assert response.status_code == 404
        problem(response)


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"data": {"currency": "EUR", "amount": "NaN"}}, "/events/0/data/amount"),
        ({"data": {"currency": "EUR", "amount": "1e3"}}, "/events/0/data/amount"),
        ({"data": {"currency": "EUR", "amount": 12.5}}, "/events/0/data/amount"),
        ({"data": {"currency": "EUR", "amount": "-5.00"}}, "/events/0/data/amount"),
        ({"data": {"currency": "EUR", "amount": "99999999999999999"}}, "/events/0/data/amount"),
        ({"data": {"currency": "XYZ", "amount": "5.00"}}, "/events/0/data/currency"),
        ({"data": {"currency": "eur", "amount": "5.00"}}, "/events/0/data/currency"),
        ({"occurred_at": "2026-10-01T10:00:00"}, "/events/0/occurred_at"),
        ({"occurred_at": "2026-02-30T10:00:00Z"}, "/events/0/occurred_at"),
        ({"occurred_at": 1790000000}, "/events/0/occurred_at"),
        ({"ref": "bad\x00ref"}, "/events/0/ref"),
        ({"ref": "x" * 129}, "/events/0/ref"),
        ({"ref": "\ud800"}, None),  # a lone surrogate cannot even be sent as UTF-8 JSON
        ({"type": "order.shipped"}, "/events/0/type"),
        ({"merchant": 7}, "/events/0/merchant"),
        ({"unexpected": True}, "/events/0/unexpected"),
    ],
)
def test_every_bad_input_class_is_a_clear_4xx(api, merchant, change, pointer) -> None:
    event = order_event(merchant) | change
    if pointer is None:
        raw = json.dumps({"events": [event]}, ensure_ascii=False).encode("utf-8", "surrogatepass")
        response = api.post(EVENTS, raw)
        assert response.status_code == 400
    else:
        response = api.post(EVENTS, {"events": [event]})
        assert response.status_code == 422, response.content
        assert pointer in [e["pointer"] for e in problem(response)["errors"]]
    assert Entry.objects.count() == 0
