"""Schemathesis over the served OpenAPI schema, in-process: no 5xx, every answer as documented.

Requests go through Django's WSGI handler (no server, no network). Every operation runs twice,
once with a marketplace key and once with a merchant key; every request carries the bearer key
and every POST is signed over the bytes that are actually sent, as the party's client would, so
generated data reaches the views instead of stopping at authentication. Some generated requests
name our merchant, its invoices or its advance, and some bodies are the public UBL and EPCIS
examples, so the 200 and 201 answers are checked too, not only the refusals.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.test import Client
from django.test.utils import override_settings
from django.urls import resolve
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.test import EnvironBuilder

from config.api.permissions import IsMarketplaceKey, IsMerchantKey
from config.api.signing import sign
from financing.models import Advance
from financing.roles import OFFICER, SENIOR_OFFICER
from financing.services.decisions import advance_approve
from financing.services.facilities import facility_open_propose
from financing.services.proposals import change_confirm
from financing.services.requests import advance_request
from merchants.models import Merchant
from merchants.services import api_key_issue, marketplace_create, merchant_onboard
from tests.api.conftest import SignedClient, signed_client
from tests.conftest import SHARED_FORMATS
from tests.financing.conftest import DEFAULT_TERMS, Trade, staff

EVENTS = "/api/v1/events"
UBL = "/api/v1/invoices/ubl"
EPCIS = "/api/v1/logistics/epcis"
RECEIVABLE_BODIES = ("/api/v1/advances/quote", "/api/v1/advances")
SELLER = "s1"
# The supplier of the Peppol examples, under the seller id the documented example names.
EXAMPLE_SELLER, EXAMPLE_TAX_ID = "A3F9K2QZ7", "SE123456789001"
# 60 keeps the run short; CHAINFIN_FUZZ_EXAMPLES=1000 digs deeper.
EXAMPLES_PER_OPERATION = int(os.environ.get("CHAINFIN_FUZZ_EXAMPLES", "60"))
PROBLEM = "application/problem+json"

APPLICATION = WSGIHandler()
# Settlement reports are raw bytes: generated as bytes, they go out exactly as the harness signs
# them (a str body for an unknown text type would be re-encoded after signing).
_REPORTS = st.one_of(
    st.binary(max_size=300),
    st.just(b"line_id,payout_ref,invoice_ref,order_ref,currency,amount,paid_to,settled_on\n"),
)
for _media_type in ("text/csv", "text/tab-separated-values"):
    schemathesis.openapi.media_type(_media_type, _REPORTS)
with override_settings(ALLOWED_HOSTS=["localhost"]):
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", APPLICATION)

_PROBLEM_SCHEMA = {
    "$ref": "#/components/schemas/Problem",
    "components": schema.raw_schema["components"],
}
_UBL_SAMPLES = sorted(p.read_bytes() for p in SHARED_FORMATS.glob("ubl-invoice/*.xml"))
_EPCIS_SAMPLES = [
    json.loads(p.read_bytes())
    for p in sorted(SHARED_FORMATS.glob("epcis/*.jsonld"))
    if p.stat().st_size < 100_000
]


# What the running fixture seeded for the hooks to name: our invoice refs and an advance.
SEEDED: dict[str, Any] = {"refs": [], "advance": ""}


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    """Name our merchant, and an entry it has, or our advance, some of the time."""
    if isinstance(path_parameters, dict) and "ref" in path_parameters and SEEDED["advance"]:
        return st.sampled_from([path_parameters, {**path_parameters, "ref": SEEDED["advance"]}])
    if not isinstance(path_parameters, dict) or "seller_id" not in path_parameters:
        return st.just(path_parameters)
    ours = {**path_parameters, "seller_id": SELLER}
    if "seq" in path_parameters:
        ours_at = st.sampled_from([1, 2, 3, path_parameters["seq"]])
        return st.one_of(st.just(path_parameters), ours_at.map(lambda seq: {**ours, "seq": seq}))
    return st.sampled_from([path_parameters, ours])


@schema.hook
def flatmap_query(context: Any, query: dict[str, Any] | None) -> Any:
    if not isinstance(query, dict) or "merchant" not in query:
        return st.just(query)
    return st.sampled_from([query, {**query, "merchant": SELLER}])


@schema.hook
def flatmap_body(context: Any, body: Any) -> Any:
    """Now and then our merchant in an events batch, our invoices in a quote or an advance
    request, or a real UBL or EPCIS document."""
    path = context.operation.path
    if path in RECEIVABLE_BODIES and SEEDED["refs"]:
        refs = SEEDED["refs"]
        ours = [{"receivables": refs[:1]}, {"receivables": refs[1:]}, {"receivables": refs}]
        return st.one_of(st.just(body), st.sampled_from(ours))
    if path == EVENTS and isinstance(body, dict) and isinstance(body.get("events"), list):
        events = body["events"]
        if all(isinstance(e, dict) for e in events):
            ours = {**body, "events": [{**e, "merchant": SELLER} for e in events]}
            return st.sampled_from([body, ours])
    if path == UBL and _UBL_SAMPLES:
        return st.one_of(st.just(body), st.sampled_from(_UBL_SAMPLES))
    if path == EPCIS and _EPCIS_SAMPLES:
        return st.one_of(st.just(body), st.sampled_from(_EPCIS_SAMPLES))
    return st.just(body)


@dataclass
class Signer:
    """Adds the bearer key to every request and signs every POST over its exact bytes."""

    key: str
    secret: str
    stamps: dict[tuple[str, bytes], int] = field(default_factory=dict)
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    codes: Counter[str] = field(default_factory=Counter)
    _serial: Iterator[int] = field(default_factory=itertools.count)

    def headers(self, case: schemathesis.Case) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.key}"}
        if case.method.upper() != "POST":
            return headers
        headers["Idempotency-Key"] = f"st-{next(self._serial)}-{time.time_ns()}"
        # Build the WSGI request the transport will send, to sign exactly its bytes.
        wire = case.as_transport_kwargs(headers=headers)
        accepted = ("method", "path", "query_string", "headers", "data", "json", "content_type")
        environ = EnvironBuilder(**{k: v for k, v in wire.items() if k in accepted}).get_environ()
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        # The path as the server reads it back (Django re-quotes it): a path parameter such as
        # "%Y-%m" is not a valid escape, and the server verifies its own canonical spelling.
        target = WSGIRequest(environ).get_full_path()
        # A signature is accepted once, and the same request may be generated twice in one
        # second: sign the repeat a second earlier, well inside the 300 s window.
        now = int(time.time())
        previous = self.stamps.get((target, body))
        stamp = now if previous is None else min(now, previous - 1)
        self.stamps[(target, body)] = stamp
        headers["Chainfin-Timestamp"] = str(stamp)
        headers["Chainfin-Signature"] = sign(self.secret, str(stamp), "POST", target, body)
        return headers

    def record(self, case: schemathesis.Case, response: schemathesis.Response) -> None:
        self.statuses[case.operation.label][response.status_code] += 1
        if response.headers.get("content-type", [""])[0] == PROBLEM:
            code = json.loads(response.content)["code"]
            self.codes[code] += 1
            # Signed as sent, so a refused signature means this harness, not the data, is off;
            # except for a multipart type without a boundary, which the harness cannot rebuild
            # byte for byte (werkzeug makes a form of it) and no real client sends.
            content_type = str((case.headers or {}).get("Content-Type", ""))
            unbuildable = content_type.startswith("multipart/") and "boundary=" not in content_type
            if not unbuildable:
                assert code not in ("invalid_signature", "replayed_signature"), response.content


def problem_conforms(response: schemathesis.Response) -> None:
    """Schemathesis validates only documented media types; problem documents are checked here."""
    if response.headers.get("content-type", [""])[0] != PROBLEM:
        return
    document = json.loads(response.content)
    jsonschema.validate(document, _PROBLEM_SCHEMA)
    assert document["status"] == response.status_code, document


def _kinds(operation: Any) -> tuple[str, ...]:
    """The kinds of key an operation takes, from its view's permission class."""
    view = resolve(re.sub(r"\{[^}]+\}", "1", operation.path)).func.view_class
    taken = {IsMarketplaceKey: ("marketplace",), IsMerchantKey: ("merchant",)}
    permission = view.permission_classes[0]
    return taken.get(permission, ("marketplace", "merchant"))


@dataclass
class Keys:
    """A marketplace key and a merchant key on the same world. An operation gets mostly the
    kind it takes (each in turn where it takes both) and every sixth example the other kind,
    so every endpoint is exercised with both and the refusals are documented too."""

    signers: dict[str, Signer]
    _serial: Iterator[int] = field(default_factory=itertools.count)

    def for_case(self, case: schemathesis.Case) -> tuple[str, Signer]:
        n, taken = next(self._serial), _kinds(case.operation)
        other = [kind for kind in self.signers if kind not in taken]
        kind = other[0] if other and n % 6 == 5 else taken[n % len(taken)]
        return kind, self.signers[kind]


@pytest.fixture
def keys(transactional_db: None, settings: Any) -> Iterator[Keys]:
    """One marketplace and merchant "s1", all committed: a few orders, fundable invoices, a
    facility and a disbursed advance; a key of the marketplace's and one of s1's own."""
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]
    settings.API_RATE_LIMIT_PER_MINUTE = 1_000_000
    marketplace = marketplace_create(code="schemathesis", name="Fuzz Market")
    merchants = {
        seller: merchant_onboard(
            legal_name=f"Merchant {seller}",
            country=tax_id[:2],
            tax_id=tax_id,
            marketplace=marketplace,
            seller_id=seller,
            kyc_status=Merchant.KycStatus.VERIFIED,
        )
        for seller, tax_id in ((SELLER, "DE100000001"), (EXAMPLE_SELLER, EXAMPLE_TAX_ID))
    }
    seeded = signed_client(marketplace).post(
        EVENTS, {"events": [_order(f"FUZZ-ORD-{n}") for n in range(1, 4)]}
    )
    assert seeded.status_code == 201, seeded.content
    SEEDED.update(_financing(merchants[SELLER], marketplace.code))
    now = timezone.now()
    issued = {
        "marketplace": api_key_issue(marketplace=marketplace, now=now, label="schemathesis"),
        "merchant": api_key_issue(merchant=merchants[SELLER], now=now, label="schemathesis"),
    }
    keys = Keys({kind: Signer(i.key, i.signing_secret) for kind, i in issued.items()})
    started = time.monotonic()
    yield keys
    SEEDED.update(refs=[], advance="")
    took = time.monotonic() - started
    for kind, signer in keys.signers.items():
        for label, statuses in signer.statuses.items():
            calls = sum(statuses.values())
            print(f"\n{label}, {kind} key: {calls} calls, {dict(sorted(statuses.items()))}")
        print(f"problem codes: {dict(signer.codes.most_common())}")
    print(f"in {took:.1f} s")


def _financing(merchant: Merchant, source: str) -> dict[str, Any]:
    """A facility, three fundable invoices and a disbursed advance on a fourth: what the
    merchant endpoints quote, request and read, and what a marketplace is told to pay."""
    now = timezone.now()
    senior = staff("fuzz-senior", SENIOR_OFFICER)
    opening = facility_open_propose(
        merchant=merchant,
        currency="EUR",
        officer=staff("fuzz-officer", OFFICER),
        reason="Fuzz",
        now=now,
        terms=DEFAULT_TERMS,
    )
    change_confirm(change=opening, officer=senior, now=now)
    trade = Trade(merchant, source, now=now, today=now.date())
    *refs, taken = trade.fundable(4)
    advance = advance_request(merchant=merchant, refs=[taken], request_key="fuzz", now=now)
    advance_approve(advance=advance, officer=senior, now=now)
    assert Advance.objects.get(pk=advance.pk).status == Advance.Status.DISBURSED
    return {"refs": refs, "advance": advance.ref}


def _order(ref: str) -> dict[str, Any]:
    return {
        "type": "order.placed",
        "merchant": SELLER,
        "ref": ref,
        "occurred_at": "2026-09-30T12:00:00Z",
        "data": {"currency": "EUR", "amount": "15.00"},
    }


HYPOTHESIS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.postgres
@schema.parametrize()
@HYPOTHESIS
def test_api_answers_as_documented(case: schemathesis.Case, keys: Keys) -> None:
    kind, signer = keys.for_case(case)
    response = case.call(headers=signer.headers(case))
    signer.record(case, response)
    if kind not in _kinds(case.operation):
        assert response.status_code in (401, 403, 404, 405), response.content
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
    problem_conforms(response)


@pytest.mark.django_db
@pytest.mark.parametrize("content_type", ["application/xml", ""])
def test_ubl_without_a_body_is_refused(api: SignedClient, content_type: str) -> None:
    """Found by schemathesis: an empty body once reached the UBL parser as {} and crashed."""
    http = Client(raise_request_exception=False)  # the 500 as a response, not an exception
    client = SignedClient(http, api.marketplace, api.key, api.secret)
    response = client.post(UBL, b"", content_type=content_type)
    assert response.status_code in (400, 415, 422), response.content
    assert response["Content-Type"] == PROBLEM
