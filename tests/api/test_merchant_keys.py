"""Merchant keys: signed and checked like marketplace keys, but good only for merchant endpoints.

Every operation of the schema is classified by the permission class its view declares:
IsMarketplaceKey or IsMerchantKey (a view with neither fails the run). A merchant key is refused
with 403 ``credential_scope`` on every marketplace operation, so one added later is covered
without touching this file; a merchant operation (say POST /api/v1/advances) is left out by
declaring IsMerchantKey, and then gets the mirror check: a marketplace key is refused there.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from functools import cache
from typing import Any

import pytest
from django.test import Client
from django.urls import resolve
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from config.api.authentication import ApiPrincipal, SignedApiKeyAuthentication
from config.api.idempotency import idempotent
from config.api.permissions import (
    IsAnyApiKey,
    IsBankKey,
    IsMarketplaceKey,
    IsMarketplaceOrBankKey,
    IsMerchantKey,
    api_principal,
    calling_marketplace,
    calling_merchant,
)
from config.api.problems import ApiProblem
from config.api.responses import json_response
from config.api.signing import sign
from config.api.throttling import CredentialRateThrottle
from ledger.models import Entry, IdempotentRequest
from merchants.models import ApiKey, Marketplace, Merchant
from merchants.services import api_key_issue, api_key_revoke
from tests.api.conftest import SignedClient, merchant_signed_client, order_event, seller_id
from tests.api.test_signature_mutations import Wire

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"
EVENTS = "/api/v1/events"
_PARAMETER = re.compile(r"\{[^}]+\}")


def _code(response: Any) -> str:
    return json.loads(response.content)["code"]


@cache
def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    # Generated directly, not fetched: the parameters are built at collection time, before
    # pytest-django has set up the test environment a request needs.
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in ("get", "put", "post", "patch", "delete")
    ]


def _concrete(path: str) -> str:
    # "1" fits every converter the API uses (str and int), so the route resolves.
    return _PARAMETER.sub("1", path)


_KINDS = (
    ("marketplace", IsMarketplaceKey),
    ("merchant", IsMerchantKey),
    ("either", IsAnyApiKey),
    ("bank", IsBankKey),
    ("files", IsMarketplaceOrBankKey),  # the jobs of uploaded files: reports and statements
)


def _kind(path: str) -> str:
    """'marketplace', 'merchant', 'either', 'bank' or 'files', from the view's permission class.

    'either' views answer each kind of key with that party's own data; their tenancy is tested
    beside them (tests/financing/test_api.py).
    """
    view_class = resolve(_concrete(path)).func.view_class
    kinds = {kind for kind, permission in _KINDS if permission in view_class.permission_classes}
    assert len(kinds) == 1, (
        f"{path}: declare one of IsMarketplaceKey, IsMerchantKey, IsAnyApiKey, IsBankKey, "
        "IsMarketplaceOrBankKey"
    )
    return kinds.pop()


def _operations_of(kind: str) -> list[Any]:
    return [
        pytest.param(method, path, operation, id=f"{method} {path}")
        for method, path, operation in _operations()
        if _kind(path) == kind
    ]


def _send(client: SignedClient, method: str, path: str, operation: dict[str, Any]) -> Any:
    if method == "GET":
        return client.get(_concrete(path))
    media = next(iter(operation.get("requestBody", {}).get("content", {})), "application/json")
    return client.post(_concrete(path), b"{}", content_type=media)


@pytest.fixture
def merchant_api(merchant: Merchant) -> SignedClient:
    return merchant_signed_client(merchant)


def test_every_operation_declares_the_kind_of_key_it_takes() -> None:
    operations = _operations()
    assert operations
    kinds = {"marketplace", "merchant", "either", "bank", "files"}
    assert {_kind(path) for _, path, _ in operations} <= kinds
    assert _operations_of("marketplace"), "no marketplace operation found: the check is vacuous"


@pytest.mark.parametrize(("method", "path", "operation"), _operations_of("marketplace"))
def test_a_merchant_key_is_refused_on_every_marketplace_operation(
    merchant_api, method, path, operation
) -> None:
    response = _send(merchant_api, method, path, operation)
    assert response.status_code == 403, response.content
    assert response["Content-Type"] == PROBLEM
    problem = json.loads(response.content)
    assert problem["code"] == "credential_scope"
    assert problem["detail"] == "This endpoint is for marketplace keys."
    assert "403" in operation["responses"], f"{method} {path} does not document its 403"
    assert Entry.objects.count() == IdempotentRequest.objects.count() == 0


@pytest.mark.parametrize(("method", "path", "operation"), _operations_of("merchant"))
def test_a_marketplace_key_is_refused_on_every_merchant_operation(
    api, method, path, operation
) -> None:
    # Skipped as an empty parameter set until the first merchant operation is routed.
    response = _send(api, method, path, operation)
    assert response.status_code == 403, response.content
    assert json.loads(response.content)["detail"] == "This endpoint is for merchant keys."


@pytest.mark.parametrize(("method", "path", "operation"), _operations_of("bank"))
def test_marketplace_and_merchant_keys_are_refused_on_every_bank_operation(
    api, merchant_api, method, path, operation
) -> None:
    for client in (api, merchant_api):
        response = _send(client, method, path, operation)
        assert response.status_code == 403, response.content
        assert json.loads(response.content)["detail"] == "This endpoint is for bank keys."


@pytest.mark.parametrize(("method", "path", "operation"), _operations_of("files"))
def test_a_merchant_key_is_refused_on_every_file_job_operation(
    merchant_api, method, path, operation
) -> None:
    response = _send(merchant_api, method, path, operation)
    assert response.status_code == 403, response.content
    detail = json.loads(response.content)["detail"]
    assert detail == "This endpoint is for marketplace or bank keys."
    assert "403" in operation["responses"], f"{method} {path} does not document its 403"


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    _operations_of("marketplace") + _operations_of("merchant") + _operations_of("either"),
)
def test_a_bank_key_is_refused_on_every_party_operation(method, path, operation) -> None:
    issued = api_key_issue(bank=True, now=timezone.now())
    bank = SignedClient(Client(), None, issued.key, issued.signing_secret)
    response = _send(bank, method, path, operation)
    assert response.status_code == 403, response.content
    assert _code(response) == "credential_scope"
    assert Entry.objects.count() == IdempotentRequest.objects.count() == 0


def test_the_marketplace_key_still_passes(api, merchant) -> None:
    response = api.post(EVENTS, {"events": [order_event(merchant)]})
    assert response.status_code == 201, response.content


def test_a_revoked_merchant_key_is_401(merchant_api, merchant) -> None:
    path = f"/api/v1/merchants/{seller_id(merchant)}/chain"
    assert merchant_api.get(path).status_code == 403  # authenticated; wrong kind of key
    api_key_revoke(api_key=ApiKey.objects.get(merchant=merchant), now=timezone.now())
    response = merchant_api.get(path)
    assert response.status_code == 401
    assert _code(response) == "invalid_api_key"


def test_closing_the_merchant_ends_its_keys(merchant_api, merchant) -> None:
    path = f"/api/v1/merchants/{seller_id(merchant)}/chain"
    Merchant.objects.filter(pk=merchant.pk).update(status=Merchant.Status.SUSPENDED)
    assert merchant_api.get(path).status_code == 403  # suspended: still authenticated
    Merchant.objects.filter(pk=merchant.pk).update(status=Merchant.Status.CLOSED)
    response = merchant_api.get(path)
    assert response.status_code == 401
    assert _code(response) == "invalid_api_key"


# Signatures: a merchant key's correctly signed POST to a marketplace endpoint passes
# authentication and is then refused for its kind (403); any mutation fails authentication (401).


def _signed(client: SignedClient, body: bytes, *, path: str = EVENTS) -> Wire:
    stamp = str(int(time.time()))
    return Wire(
        path=path,
        body=body,
        authorization=f"Bearer {client.key}",
        timestamp=stamp,
        signature=sign(client.secret, stamp, "POST", path, body),
    )


def _mutations(wire: Wire, own_secret: str, other_secret: str) -> dict[str, tuple[Wire, str]]:
    assert wire.timestamp is not None and wire.signature is not None
    stale = str(int(wire.timestamp) - 301)
    resigned_stale = sign(own_secret, stale, "POST", wire.path, wire.body)
    foreign = sign(other_secret, wire.timestamp, "POST", wire.path, wire.body)
    return {
        "body": (replace(wire, body=wire.body.replace(b"ORD", b"ORX")), "invalid_signature"),
        "path": (replace(wire, path="/api/v1/invoices/ubl"), "invalid_signature"),
        "query": (replace(wire, path=f"{EVENTS}?merchant=x"), "invalid_signature"),
        "stale": (replace(wire, timestamp=stale, signature=resigned_stale), "stale_timestamp"),
        "marketplace's secret": (replace(wire, signature=foreign), "invalid_signature"),
        "truncated": (replace(wire, signature=wire.signature[:-1]), "invalid_signature"),
        "no signature": (replace(wire, signature=None), "missing_signature"),
        "no timestamp": (replace(wire, timestamp=None), "missing_timestamp"),
    }


def test_a_merchant_keys_signature_mutations_are_refused(merchant_api, api, merchant) -> None:
    body = json.dumps({"events": [order_event(merchant)]}).encode()
    base = _signed(merchant_api, body)
    for name, (mutated, code) in _mutations(base, merchant_api.secret, api.secret).items():
        response = mutated.send(merchant_api.http)
        assert (response.status_code, _code(response)) == (401, code), name
    # Unmutated, it authenticates (and is refused for its kind), once: a replay is a 401.
    first = base.send(merchant_api.http)
    assert (first.status_code, _code(first)) == (403, "credential_scope")
    replay = base.send(merchant_api.http)
    assert (replay.status_code, _code(replay)) == (401, "replayed_signature")
    assert Entry.objects.count() == IdempotentRequest.objects.count() == 0


# The permission classes on their own, with requests the real authentication has accepted.


def _authenticated(client: SignedClient, *, post: bool = True) -> Request:
    factory = APIRequestFactory()
    body = b'{"quote": true}'
    if post:
        stamp = str(int(time.time()))
        raw = factory.post(
            "/api/v1/advances/quote",
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {client.key}",
            HTTP_CHAINFIN_TIMESTAMP=stamp,
            HTTP_CHAINFIN_SIGNATURE=sign(
                client.secret, stamp, "POST", "/api/v1/advances/quote", body
            ),
        )
    else:
        raw = factory.get("/api/v1/advances", HTTP_AUTHORIZATION=f"Bearer {client.key}")
    request = Request(raw, authenticators=[SignedApiKeyAuthentication()])
    assert isinstance(request.user, ApiPrincipal)  # authenticates, signature included
    return request


@pytest.mark.parametrize("post", [True, False], ids=["signed POST", "GET"])
def test_is_merchant_key_accepts_a_merchant_key_and_names_its_merchant(
    merchant_api, merchant, post
) -> None:
    request = _authenticated(merchant_api, post=post)
    assert IsMerchantKey().has_permission(request, view=None)
    assert calling_merchant(request) == merchant
    principal = api_principal(request)
    assert (principal.kind, principal.merchant_id, principal.marketplace_id) == (
        "merchant",
        merchant.pk,
        None,
    )
    assert request.auth == ApiKey.objects.get(merchant=merchant)
    assert request.auth.merchant_id == merchant.pk
    with pytest.raises(ApiProblem) as refused:
        IsMarketplaceKey().has_permission(request, view=None)
    assert (refused.value.status, refused.value.code) == (403, "credential_scope")
    with pytest.raises(ApiProblem):
        calling_marketplace(request)


def test_is_merchant_key_refuses_a_marketplace_key(api) -> None:
    request = _authenticated(api)
    assert IsMarketplaceKey().has_permission(request, view=None)
    assert calling_marketplace(request) == api.marketplace
    with pytest.raises(ApiProblem) as refused:
        IsMerchantKey().has_permission(request, view=None)
    assert (refused.value.status, refused.value.code) == (403, "credential_scope")
    assert refused.value.detail == "This endpoint is for merchant keys."
    with pytest.raises(ApiProblem) as not_a_merchant:
        calling_merchant(request)
    assert not_a_merchant.value.code == "credential_scope"


def test_is_merchant_key_refuses_an_unauthenticated_request() -> None:
    request = Request(APIRequestFactory().get("/api/v1/advances"))
    assert not IsMerchantKey().has_permission(request, view=None)
    assert not IsMarketplaceKey().has_permission(request, view=None)


# Idempotency keys and rate limits are counted per principal: one number, two parties.


def _twins() -> tuple[ApiPrincipal, ApiPrincipal]:
    """A marketplace and a merchant that share a database id (rows in different tables)."""
    shared = 900_000_000 + time.time_ns() % 10**8  # not an id any other test's counters use
    return (
        ApiPrincipal(api_key_id=1, marketplace=Marketplace(pk=shared, code="twin")),
        ApiPrincipal(api_key_id=2, merchant=Merchant(pk=shared, public_id="mer_twin")),
    )


def test_principals_of_the_two_kinds_never_share_a_scope() -> None:
    marketplace, merchant = _twins()
    assert marketplace.scope == f"marketplace:{marketplace.marketplace_id}"
    assert merchant.scope == f"merchant:{merchant.merchant_id}"
    assert marketplace.marketplace_id == merchant.merchant_id
    assert marketplace.scope != merchant.scope
    with pytest.raises(ValueError, match="exactly one"):
        ApiPrincipal(api_key_id=3)


def test_the_same_idempotency_key_is_two_requests_for_two_principals() -> None:
    ran = []

    def work(principal: ApiPrincipal) -> Any:
        ran.append(principal.kind)
        return json_response({"for": principal.kind}, status=201)

    for principal in _twins():
        raw = APIRequestFactory().post(
            EVENTS, b"{}", content_type="application/json", HTTP_IDEMPOTENCY_KEY="shared-key"
        )
        response = idempotent(Request(raw), principal.scope, lambda p=principal: work(p))
        assert response.status_code == 201
        assert not response.has_header("Idempotent-Replayed")
    assert ran == ["marketplace", "merchant"]
    assert IdempotentRequest.objects.filter(key="shared-key").count() == 2


def test_rate_limits_are_counted_per_principal(settings) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 1
    while time.time() % 60 > 55:  # keep the four calls inside one rate window
        time.sleep(0.5)
    allowed = []
    for principal in _twins():
        request = Request(APIRequestFactory().get("/api/v1/advances"))
        request.user = principal
        throttle = CredentialRateThrottle()
        allowed.append([throttle.allow_request(request, view=None) for _ in range(2)])
    # The second call of each is over the limit of one; the first of each counts on its own.
    assert allowed == [[True, False], [True, False]]
