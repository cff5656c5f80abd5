"""Bearer keys, signatures, timestamps and replays: only the marketplace's own requests pass."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.api.signing import sign
from ledger.models import Entry, IdempotentRequest
from merchants.credentials import key_prefix
from merchants.models import ApiKey
from merchants.services import api_key_issue, api_key_revoke
from tests.api.conftest import SignedClient, order_event, seller_id

pytestmark = pytest.mark.django_db
EVENTS = "/api/v1/events"


def _code(response) -> str:
    return json.loads(response.content)["code"]


def test_reads_need_a_key(client, merchant) -> None:
    response = client.get(f"/api/v1/merchants/{seller_id(merchant)}/chain")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="chainfin"'
    assert _code(response) == "missing_api_key"


def test_unknown_and_revoked_keys_are_refused(api, merchant) -> None:
    path = f"/api/v1/merchants/{seller_id(merchant)}/chain"
    assert api.get(path).status_code == 200
    wrong = SignedClient(api.http, api.marketplace, api.key[:-2] + "xx", api.secret)
    assert _code(wrong.get(path)) == "invalid_api_key"
    api_key_revoke(api_key=ApiKey.objects.get(), now=timezone.now())
    assert api.get(path).status_code == 401


def test_several_keys_may_be_active_for_rotation(api, merchant) -> None:
    issued = api_key_issue(marketplace=api.marketplace, now=timezone.now(), label="next")
    new = SignedClient(api.http, api.marketplace, issued.key, issued.signing_secret)
    path = f"/api/v1/merchants/{seller_id(merchant)}/chain"
    assert api.get(path).status_code == new.get(path).status_code == 200


def test_keys_are_stored_hashed_and_secrets_sealed(api) -> None:
    row = ApiKey.objects.get()
    assert api.key.split("_", 2)[2] not in str(row.__dict__)
    assert api.secret.encode() not in bytes(row.signing_secret_sealed)


def test_create_api_key_command_prints_json(marketplace, capsys) -> None:
    call_command("create_api_key", marketplace.code, "--label", "prod")
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"api_key", "signing_secret"}
    assert printed["api_key"].startswith(ApiKey.objects.get(label="prod").prefix + "_")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"timestamp": -301}, "stale_timestamp"),
        ({"timestamp": +301}, "stale_timestamp"),
        ({"secret": "cfs_wrong"}, "invalid_signature"),
    ],
)
def test_bad_signatures_are_401(api, merchant, change, code) -> None:
    kwargs = {}
    if "timestamp" in change:
        kwargs["timestamp"] = int(time.time()) + change["timestamp"]
    if "secret" in change:
        kwargs["secret"] = change["secret"]
    response = api.post(EVENTS, {"events": [order_event(merchant)]}, **kwargs)
    assert response.status_code == 401
    assert _code(response) == code
    assert Entry.objects.count() == 0


def _signed_headers(api: SignedClient, raw: bytes, key: str | None) -> dict[str, str]:
    stamp = str(int(time.time()))
    headers = {
        "HTTP_AUTHORIZATION": f"Bearer {api.key}",
        "HTTP_CHAINFIN_TIMESTAMP": stamp,
        "HTTP_CHAINFIN_SIGNATURE": sign(api.secret, stamp, "POST", EVENTS, raw),
    }
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return headers


def _send(api: SignedClient, raw: bytes, headers: dict[str, str]):
    return api.http.generic("POST", EVENTS, raw, content_type="application/json", **headers)


def test_an_exact_repeat_of_a_stored_request_gets_the_stored_response(api, merchant) -> None:
    """A client retrying within the same second sends the same bytes, signature included."""
    raw = json.dumps({"events": [order_event(merchant)]}).encode()
    headers = _signed_headers(api, raw, "once")
    first = _send(api, raw, headers)
    repeat = _send(api, raw, headers)
    assert first.status_code == 201
    assert (repeat.status_code, repeat.content) == (201, first.content)
    assert repeat["Idempotent-Replayed"] == "true"
    assert Entry.objects.count() == 1


def _another_key(api, merchant, raw, headers):
    assert _send(api, raw, headers).status_code == 201
    return headers | {"HTTP_IDEMPOTENCY_KEY": "another"}


def _no_key(api, merchant, raw, headers):
    assert _send(api, raw, headers).status_code == 201
    return {name: value for name, value in headers.items() if name != "HTTP_IDEMPOTENCY_KEY"}


def _first_refused(api, merchant, raw, headers):
    raw_bad = json.dumps({"events": [order_event(merchant, amount="1.001")]}).encode()
    headers = _signed_headers(api, raw_bad, "k")
    assert _send(api, raw_bad, headers).status_code == 422  # refused, so nothing stored
    return headers, raw_bad


def _first_in_flight(api, merchant, raw, headers):
    fingerprint = hashlib.sha256(f"POST {EVENTS}\n".encode() + raw).hexdigest()
    IdempotentRequest.objects.create(
        scope=f"marketplace:{api.marketplace.pk}",
        key="k",
        fingerprint=fingerprint,
        claimed_at=timezone.now(),
    )
    assert _send(api, raw, headers).status_code == 409
    return headers


def _key_stored_for_another_body(api, merchant, raw, headers):
    other = json.dumps({"events": [order_event(merchant, "ORD-2")]}).encode()
    assert _send(api, other, _signed_headers(api, other, "k")).status_code == 201
    assert _send(api, raw, headers).status_code == 422  # idempotency_key_reused
    return headers


@pytest.mark.parametrize(
    "setup",
    [_another_key, _no_key, _first_refused, _first_in_flight, _key_stored_for_another_body],
    ids=["another-key", "no-key", "first-refused", "first-in-flight", "key-stored-for-another"],
)
def test_a_spent_signature_with_any_other_effect_is_refused(api, merchant, setup) -> None:
    raw = json.dumps({"events": [order_event(merchant)]}).encode()
    headers = _signed_headers(api, raw, "k")
    prepared = setup(api, merchant, raw, headers)
    headers, raw = prepared if isinstance(prepared, tuple) else (prepared, raw)
    entries = Entry.objects.count()
    replay = _send(api, raw, headers)
    assert replay.status_code == 401 and _code(replay) == "replayed_signature"
    assert Entry.objects.count() == entries


def test_rate_limit_is_per_credential_and_atomic(api, merchant, settings) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    path = f"/api/v1/merchants/{seller_id(merchant)}/chain"
    statuses = [api.get(path).status_code for _ in range(5)]
    assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
    limited = api.get(path)
    assert _code(limited) == "rate_limited" and int(limited["Retry-After"]) <= 60


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_rate_limit_holds_under_concurrency(api, merchant, settings) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 10
    path = f"/api/v1/merchants/{seller_id(merchant)}/chain"
    barrier = threading.Barrier(24)

    def call(_: int) -> int:
        client = SignedClient(Client(), api.marketplace, api.key, api.secret)
        barrier.wait()
        try:
            return client.get(path).status_code
        finally:
            connection.close()

    while time.time() % 60 > 50:  # keep all 24 calls inside one rate window
        time.sleep(0.5)
    with ThreadPoolExecutor(24) as pool:
        statuses = list(pool.map(call, range(24)))
    assert (statuses.count(200), statuses.count(429)) == (10, 14)


def test_a_keys_last_use_is_written_once_per_interval_not_per_request(api, merchant) -> None:
    path = f"/api/v1/merchants/{seller_id(merchant)}/chain"
    assert api.get(path).status_code == 200
    key = ApiKey.objects.get(prefix=key_prefix(api.key))
    assert key.last_used_at is not None

    with CaptureQueriesContext(connection) as captured:
        assert api.get(path).status_code == 200
    assert not [q for q in captured if q["sql"].startswith("UPDATE")]
    assert ApiKey.objects.get(pk=key.pk).last_used_at == key.last_used_at
