"""OpenAPI descriptions of the marketplace API (drf-spectacular): shapes, errors, examples.

Events are validated by ledger.events (pydantic, the fast path); what this schema states about
them is read from there: the event types, the ref rules, the batch limit.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter
from rest_framework import serializers

from config.api.inputs import REF_SCHEMA, RefField
from config.api.schema import (
    INVALID_QUERY,
    LIMIT,
    PROBLEM,
    RATE_LIMITED,
    SIGNED_HEADERS,
    TOO_LARGE,
    UNAUTHENTICATED,
    UNSIGNED,
    WRONG_CONTENT_TYPE,
    cursor_parameter,
    problem,
)
from ledger.events import EVENT_SCHEMAS

HEX64 = r"^[0-9a-f]{64}$"
MAX_EVENTS = 1000
SELLER_ID_HELP = "Your seller id for the merchant, as in every request."
MERCHANT_ID_HELP = "Chainfin's id of the merchant (mer_…): the same whichever marketplace asks."


def _data_fields() -> str:
    """Each event type's data fields, read from its model in ledger.events ("?" optional)."""
    lines = [
        f"`{name}`: "
        + ", ".join(
            f"{field}{'' if info.is_required() else '?'}"
            for field, info in model.model_fields.items()
        )
        for name, model in sorted(EVENT_SCHEMAS.items())
    ]
    return "Fields of the event type (amounts are decimal strings):\n\n" + "\n".join(
        f"- {line}" for line in lines
    )


class EventInSerializer(serializers.Serializer[Any]):
    type = serializers.ChoiceField(choices=sorted(EVENT_SCHEMAS))
    merchant = serializers.CharField(help_text="Your seller id for the merchant.")
    ref = RefField(help_text="Order, invoice, shipment or payout id.")
    occurred_at = serializers.DateTimeField(help_text="RFC 3339 with an offset.")
    data = serializers.DictField(help_text=_data_fields())  # type: ignore[assignment]


class EventBatchInSerializer(serializers.Serializer[Any]):
    events = serializers.ListField(child=EventInSerializer(), min_length=1, max_length=MAX_EVENTS)


class ReceiptSerializer(serializers.Serializer[Any]):
    merchant = serializers.CharField(help_text=SELLER_ID_HELP)
    merchant_id = serializers.CharField(help_text=MERCHANT_ID_HELP)
    seq = serializers.IntegerField(min_value=1)
    hash = serializers.RegexField(HEX64)
    ref = serializers.CharField()
    type = serializers.CharField()
    log = serializers.CharField(
        help_text="Where to fetch the entry's place in the global log and its inclusion proof"
        " (GET, within a second of the append)."
    )


class ReceiptsSerializer(serializers.Serializer[Any]):
    receipts = ReceiptSerializer(many=True)


class IgnoredSerializer(serializers.Serializer[Any]):
    pointer = serializers.CharField()
    detail = serializers.CharField()


class EpcisReceiptsSerializer(ReceiptsSerializer):
    ignored = IgnoredSerializer(many=True)


class ChainHeadSerializer(serializers.Serializer[Any]):
    merchant = serializers.CharField(help_text=SELLER_ID_HELP)
    merchant_id = serializers.CharField(help_text=MERCHANT_ID_HELP)
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


_WRONG_KEY = problem("A merchant key: these operations take marketplace keys (credential_scope).")
_READ_ERRORS = {
    (401, PROBLEM): UNAUTHENTICATED,
    (403, PROBLEM): _WRONG_KEY,
    (404, PROBLEM): problem(
        "No such merchant among yours (other marketplaces' merchants do not exist)."
    ),
    (422, PROBLEM): INVALID_QUERY,
    (429, PROBLEM): RATE_LIMITED,
}
_WRITE_ERRORS = {
    (400, PROBLEM): problem(
        "Malformed body (not JSON/XML, duplicate keys, nesting) or no Idempotency-Key."
    ),
    (401, PROBLEM): UNSIGNED,
    (403, PROBLEM): _WRONG_KEY,
    (404, PROBLEM): problem("A named merchant is not one of yours."),
    (409, PROBLEM): problem(
        "The event contradicts the chain, or the same Idempotency-Key is in flight."
    ),
    (413, PROBLEM): TOO_LARGE,
    (415, PROBLEM): WRONG_CONTENT_TYPE,
    (422, PROBLEM): problem(
        "Invalid fields (each with a JSON pointer), or Idempotency-Key reused."
    ),
    (429, PROBLEM): RATE_LIMITED,
}
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
            "merchant": "A3F9K2QZ7",
            "merchant_id": "mer_3f2a9c0d1e4b5a6f",
            "seq": 42,
            "hash": "5c7c1e6c52cfe4a820397abd84d2c551b62d08a195bb58898d85c82aa67d2853",
            "ref": "INV-2026-00042",
            "type": "invoice.issued",
            "log": "/api/v1/proofs/inclusion?merchant=A3F9K2QZ7&seq=42",
        }
    ]
}

EVENTS_POST: dict[str, Any] = {
    "operation_id": "events_create",
    "summary": f"Append a batch of 1-{MAX_EVENTS:,} events, all or nothing",
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
                "merchant": "A3F9K2QZ7",
                "merchant_id": "mer_3f2a9c0d1e4b5a6f",
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
        cursor_parameter("after_seq", "Entries after this seq (0 when absent)."),
        LIMIT,
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
    "DTDs, entities and external references are refused; at most 1 MiB. An invoice names its "
    "order by its buyer order reference (BT-13), else by the one order its lines reference, "
    "else by `order_ref`; one naming none is recorded but not fundable until an "
    "`invoice.linked` event names its order. An invoice payable to a third party (a payee "
    "other than the supplier) is recorded with its `payee` and never financed.",
    "request": {"application/xml": OpenApiTypes.STR, "text/xml": OpenApiTypes.STR},
    "parameters": [
        OpenApiParameter(
            "order_ref",
            REF_SCHEMA,
            description="The order the invoice bills, for an invoice that names none; one "
            "naming another order is refused (ubl_order_reference_conflict).",
        ),
        *SIGNED_HEADERS,
    ],
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
        OpenApiParameter(
            "merchant",
            {"type": "string", "minLength": 1},
            required=True,
            description="Your seller id for the merchant whose events these are.",
        ),
        *SIGNED_HEADERS,
    ],
    "responses": {201: EpcisReceiptsSerializer, **_WRITE_ERRORS},
}
