"""OpenAPI descriptions of the marketplace API (drf-spectacular): shapes, errors, examples.

The serializers here document; validation happens in ledger.events, which the docs mirror.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from ledger.events import EVENT_SCHEMAS

HEX64 = r"^[0-9a-f]{64}$"
PROBLEM = "application/problem+json"


class ProblemFieldSerializer(serializers.Serializer[Any]):
    pointer = serializers.CharField(help_text="RFC 6901 JSON pointer into the request.")
    detail = serializers.CharField()


class ProblemSerializer(serializers.Serializer[Any]):
    type = serializers.URLField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    code = serializers.CharField(help_text="Machine-readable reason, e.g. validation_error.")
    detail = serializers.CharField(required=False)
    errors = ProblemFieldSerializer(many=True, required=False)  # type: ignore[assignment]


class EventInSerializer(serializers.Serializer[Any]):
    type = serializers.ChoiceField(choices=sorted(EVENT_SCHEMAS))
    merchant = serializers.CharField(help_text="Your seller id for the merchant.")
    ref = serializers.CharField(max_length=128, help_text="Order, invoice, shipment or payout id.")
    occurred_at = serializers.DateTimeField(help_text="RFC 3339 with an offset.")
    data = serializers.DictField(  # type: ignore[assignment]
        help_text="Fields of the event type; see the README table."
    )


class EventBatchInSerializer(serializers.Serializer[Any]):
    events = EventInSerializer(many=True, min_length=1, max_length=1000)  # type: ignore[call-arg]


class ReceiptSerializer(serializers.Serializer[Any]):
    merchant = serializers.CharField(help_text="Chainfin's public merchant id.")
    seq = serializers.IntegerField(min_value=1)
    hash = serializers.RegexField(HEX64)
    ref = serializers.CharField()
    type = serializers.CharField()


class ReceiptsSerializer(serializers.Serializer[Any]):
    receipts = ReceiptSerializer(many=True)


class IgnoredSerializer(serializers.Serializer[Any]):
    pointer = serializers.CharField()
    detail = serializers.CharField()


class EpcisReceiptsSerializer(ReceiptsSerializer):
    ignored = IgnoredSerializer(many=True)


class ChainHeadSerializer(serializers.Serializer[Any]):
    merchant = serializers.CharField()
    seq = serializers.IntegerField(min_value=0)
    hash = serializers.RegexField(HEX64)
    count = serializers.IntegerField(min_value=0)


class EntrySerializer(serializers.Serializer[Any]):
    seq = serializers.IntegerField(min_value=1)
    hash = serializers.RegexField(HEX64, help_text="SHA-256 of body's UTF-8 bytes.")
    prev_hash = serializers.RegexField(HEX64)
    type = serializers.CharField()
    ref = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]
    occurred_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField()
    body = serializers.CharField(help_text="The exact RFC 8785 canonical JSON that was hashed.")


class EntryPageSerializer(serializers.Serializer[Any]):
    entries = EntrySerializer(many=True)
    next_after_seq = serializers.IntegerField(allow_null=True)


def problem(description: str) -> OpenApiResponse:
    return OpenApiResponse(ProblemSerializer, description=description)


_WRONG_KEY = problem("A merchant key: these operations take marketplace keys (credential_scope).")
_READ_ERRORS = {
    (401, PROBLEM): problem("Missing, unknown or revoked API key."),
    (403, PROBLEM): _WRONG_KEY,
    (404, PROBLEM): problem(
        "No such merchant among yours (other marketplaces' merchants do not exist)."
    ),
    (422, PROBLEM): problem("Invalid query parameters."),
    (429, PROBLEM): problem("Rate limit reached; see Retry-After."),
}
_WRITE_ERRORS = {
    (400, PROBLEM): problem(
        "Malformed body (not JSON/XML, duplicate keys, nesting) or no Idempotency-Key."
    ),
    (401, PROBLEM): problem("Bad key, timestamp more than 300 s off, bad or reused signature."),
    (403, PROBLEM): _WRONG_KEY,
    (404, PROBLEM): problem("A named merchant is not one of yours."),
    (409, PROBLEM): problem(
        "The event contradicts the chain, or the same Idempotency-Key is in flight."
    ),
    (413, PROBLEM): problem("Body too large."),
    (415, PROBLEM): problem("Wrong Content-Type."),
    (422, PROBLEM): problem(
        "Invalid fields (each with a JSON pointer), or Idempotency-Key reused."
    ),
    (429, PROBLEM): problem("Rate limit reached; see Retry-After."),
}
SIGNED_HEADERS = [
    OpenApiParameter(
        "Chainfin-Timestamp",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        required=True,
        description="Unix seconds; must be within 300 s of Chainfin's clock.",
    ),
    OpenApiParameter(
        "Chainfin-Signature",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        required=True,
        description='v1=<hex HMAC-SHA256(signing_secret, "<ts>.<METHOD>.<path?query>.'
        '<hex SHA-256 of body>")>. Each signature is accepted once.',
    ),
    OpenApiParameter(
        "Idempotency-Key",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        required=True,
        description="1-255 printable ASCII characters. A retry with the same key and body gets "
        "the first response replayed; another body gets 422; while the first runs, 409.",
    ),
]
_SELLER = OpenApiParameter(
    "seller_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="Your seller id."
)

_EXAMPLE_EVENT = {
    "type": "invoice.issued",
    "merchant": "A3F9K2QZ7",
    "ref": "INV-2026-00042",
    "occurred_at": "2026-05-04T09:30:00+02:00",
    "data": {
        "currency": "EUR",
        "amount": "1250.00",
        "order_ref": "ORD-77812",
        "issue_date": "2026-05-04",
        "due_date": "2026-06-03",
        "debtor": {"kind": "marketplace", "name": "Acme Marketplace"},
    },
}
_EXAMPLE_RECEIPTS = {
    "receipts": [
        {
            "merchant": "mer_3f2a9c0d1e4b5a6f",
            "seq": 42,
            "hash": "5c7c1e6c52cfe4a820397abd84d2c551b62d08a195bb58898d85c82aa67d2853",
            "ref": "INV-2026-00042",
            "type": "invoice.issued",
        }
    ]
}

EVENTS_POST: dict[str, Any] = {
    "operation_id": "events_create",
    "summary": "Append a batch of 1-1,000 events, all or nothing",
    "request": EventBatchInSerializer,
    "parameters": SIGNED_HEADERS,
    "responses": {201: ReceiptsSerializer, **_WRITE_ERRORS},
    "examples": [
        OpenApiExample("An invoice", value={"events": [_EXAMPLE_EVENT]}, request_only=True),
        OpenApiExample(
            "Receipts", value=_EXAMPLE_RECEIPTS, response_only=True, status_codes=["201"]
        ),
    ],
}
CHAIN_GET: dict[str, Any] = {
    "operation_id": "merchant_chain",
    "summary": "A merchant's chain head",
    "parameters": [_SELLER],
    "responses": {200: ChainHeadSerializer, **_READ_ERRORS},
    "examples": [
        OpenApiExample(
            "Head",
            value={
                "merchant": "mer_3f2a9c0d1e4b5a6f",
                "seq": 42,
                "count": 42,
                "hash": _EXAMPLE_RECEIPTS["receipts"][0]["hash"],
            },
            response_only=True,
        )
    ],
}
ENTRIES_GET: dict[str, Any] = {
    "operation_id": "merchant_entries",
    "summary": "A merchant's entries after a seq (cursor paging)",
    "parameters": [
        _SELLER,
        OpenApiParameter("after_seq", OpenApiTypes.INT, description="Entries after this seq (0)."),
        OpenApiParameter("limit", OpenApiTypes.INT, description="Page size, 1-1,000 (100)."),
    ],
    "responses": {200: EntryPageSerializer, **_READ_ERRORS},
}
ENTRY_GET: dict[str, Any] = {
    "operation_id": "merchant_entry",
    "summary": "One entry, with the exact bytes that were hashed",
    "parameters": [_SELLER, OpenApiParameter("seq", OpenApiTypes.INT, OpenApiParameter.PATH)],
    "responses": {200: EntrySerializer, **_READ_ERRORS},
}
UBL_POST: dict[str, Any] = {
    "operation_id": "invoices_ubl_create",
    "summary": "Append a UBL 2.1 / Peppol BIS 3 Invoice or CreditNote",
    "description": "The merchant is the one whose tax id matches the supplier party. "
    "DTDs, entities and external references are refused; at most 1 MiB.",
    "request": {"application/xml": OpenApiTypes.STR, "text/xml": OpenApiTypes.STR},
    "parameters": SIGNED_HEADERS,
    "responses": {201: ReceiptsSerializer, **_WRITE_ERRORS},
}
EPCIS_POST: dict[str, Any] = {
    "operation_id": "logistics_epcis_create",
    "summary": "Append the shipping, receiving and returning events of a GS1 EPCIS 2.0 document",
    "description": "Orders are linked through the purchase-order business transaction, "
    "shipments through the despatch advice. Events with other business steps are listed "
    "under `ignored` with the reason.",
    "request": {
        "application/json": OpenApiTypes.OBJECT,
        "application/ld+json": OpenApiTypes.OBJECT,
    },
    "parameters": [
        OpenApiParameter("merchant", OpenApiTypes.STR, required=True, description="Seller id."),
        *SIGNED_HEADERS,
    ],
    "responses": {201: EpcisReceiptsSerializer, **_WRITE_ERRORS},
}
