"""The financing API's payloads (drf-spectacular): shapes, errors, examples.

A request body is described once: the serializer the schema shows is the one the view
validates with (``config.api.inputs.body_parse``).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, PolymorphicProxySerializer
from rest_framework import serializers

from config.api.inputs import BodySerializer, RefListField
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
    problem,
    ref_parameter,
)
from financing.services.requests import MAX_RECEIVABLES_PER_ADVANCE

MONEY_HELP = 'Decimal string in the currency\'s minor-unit precision, e.g. "1234.50".'

_MERCHANT_KEY = problem("A marketplace key: these operations take merchant keys.")
_WRITE_ERRORS = {
    (400, PROBLEM): problem("Malformed JSON body or no Idempotency-Key."),
    (401, PROBLEM): UNSIGNED,
    (403, PROBLEM): _MERCHANT_KEY,
    (404, PROBLEM): problem("A named invoice is not one of yours (pointer per invoice)."),
    (409, PROBLEM): problem("The same Idempotency-Key is in flight."),
    (413, PROBLEM): TOO_LARGE,
    (415, PROBLEM): WRONG_CONTENT_TYPE,
    (422, PROBLEM): problem(
        "advance_refused: each invoice that cannot be financed, with its reason codes "
        "(NO_DELIVERY, RETURNED, CREDITED, AMOUNT_EXCEEDS_ORDER, TOO_CLOSE_TO_DUE, DEBTOR_LIMIT, "
        "ALREADY_ASSIGNED, DUPLICATE_INVOICE, …); or an invalid body; or Idempotency-Key reused."
    ),
    (429, PROBLEM): RATE_LIMITED,
}


class ReceivableRefsSerializer(BodySerializer):
    """The body of a quote and of an advance request: the invoices to finance."""

    shape = '{"receivables": ["<invoice ref>", ...]}'
    receivables = RefListField(
        max_length=MAX_RECEIVABLES_PER_ADVANCE,
        noun="invoice refs",
        help_text="Invoice refs (as sent in invoice.issued) of the calling merchant, each once.",
    )


class QuoteItemSerializer(serializers.Serializer[Any]):
    ref = serializers.CharField()
    face = serializers.CharField(help_text=MONEY_HELP)
    advance = serializers.CharField(help_text=MONEY_HELP)
    fee = serializers.CharField(help_text=MONEY_HELP)
    due_date = serializers.DateField()
    days = serializers.IntegerField(min_value=1)


class QuoteSerializer(serializers.Serializer[Any]):
    currency = serializers.CharField()
    face = serializers.CharField(help_text=MONEY_HELP)
    advance = serializers.CharField(help_text="face x advance rate")
    fee = serializers.CharField(help_text="advance x annual rate x days / basis, per invoice")
    net = serializers.CharField(help_text="Paid out: advance - fee")
    reserve = serializers.CharField(help_text="Held back until the debtor pays: face - advance")
    due_date = serializers.DateField()
    days = serializers.IntegerField()
    apr = serializers.CharField(help_text="APR-equivalent in percent: fee / net x 365 / days.")
    annual_rate_bp = serializers.IntegerField()
    advance_rate_bp = serializers.IntegerField()
    day_count = serializers.ChoiceField(choices=["ACT/360", "ACT/365"])
    receivables = QuoteItemSerializer(many=True)


class AdvanceItemSerializer(serializers.Serializer[Any]):
    ref = serializers.CharField()
    face = serializers.CharField(help_text=MONEY_HELP)
    advance = serializers.CharField(help_text=MONEY_HELP)
    status = serializers.ChoiceField(choices=["held", "assigned", "released", "settled"])


class AdvanceSerializer(serializers.Serializer[Any]):
    ref = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["requested", "approved", "rejected", "disbursed", "overdue", "repaid"]
    )
    currency = serializers.CharField()
    face = serializers.CharField(help_text=MONEY_HELP)
    advance = serializers.CharField(help_text=MONEY_HELP)
    fee = serializers.CharField(help_text=MONEY_HELP)
    net = serializers.CharField(help_text=MONEY_HELP)
    reserve = serializers.CharField(help_text=MONEY_HELP)
    late_fee = serializers.CharField(help_text=MONEY_HELP)
    due_date = serializers.DateField()
    days = serializers.IntegerField()
    apr = serializers.CharField()
    requested_at = serializers.DateTimeField()
    disbursed_at = serializers.DateTimeField(allow_null=True)
    decision_note = serializers.CharField(allow_blank=True)
    receivables = AdvanceItemSerializer(many=True)


class ReasonSerializer(serializers.Serializer[Any]):
    code = serializers.CharField()
    message = serializers.CharField()


class ReceivableSerializer(serializers.Serializer[Any]):
    """A merchant key's view: every receivable with its live verdict."""

    ref = serializers.CharField(help_text="The invoice ref.")
    order_ref = serializers.CharField()
    currency = serializers.CharField()
    face = serializers.CharField(help_text=MONEY_HELP)
    issue_date = serializers.DateField()
    due_date = serializers.DateField()
    debtor = serializers.CharField()
    eligible = serializers.BooleanField()
    reasons = ReasonSerializer(many=True)
    assignment = serializers.ChoiceField(choices=["held", "assigned"], allow_null=True)


class PayToSerializer(serializers.Serializer[Any]):
    iban = serializers.CharField()
    bic = serializers.CharField()
    reference = serializers.CharField()


class AssignedReceivableSerializer(serializers.Serializer[Any]):
    """A marketplace key's view: receivables it sent that the bank owns, and where to pay."""

    cursor = serializers.CharField()
    merchant = serializers.CharField(help_text="Your seller id.")
    ref = serializers.CharField(help_text="The invoice ref.")
    currency = serializers.CharField()
    face = serializers.CharField(help_text=MONEY_HELP)
    due_date = serializers.DateField()
    advance = serializers.CharField(help_text="The ref of the advance that bought it.")
    assignee = serializers.CharField()
    pay_to = PayToSerializer()


class ReceivablePageSerializer(serializers.Serializer[Any]):
    receivables = PolymorphicProxySerializer(
        component_name="ReceivableRow",
        serializers=[ReceivableSerializer, AssignedReceivableSerializer],
        resource_type_field_name=None,
        many=True,
        help_text="Receivable rows for a merchant key, AssignedReceivable rows for a "
        "marketplace key; a receivable's fields have the same names in both.",
    )
    next_after = serializers.CharField(allow_null=True)


_EXAMPLE_REFS = {"receivables": ["INV-2026-00042", "INV-2026-00043"]}

QUOTE_POST: dict[str, Any] = {
    "operation_id": "advances_quote",
    "summary": "Price an advance against your eligible receivables (writes nothing)",
    "request": ReceivableRefsSerializer,
    "parameters": SIGNED_HEADERS,
    "responses": {200: QuoteSerializer, **_WRITE_ERRORS},
    "examples": [OpenApiExample("Two invoices", value=_EXAMPLE_REFS, request_only=True)],
}
ADVANCE_POST: dict[str, Any] = {
    "operation_id": "advances_create",
    "summary": "Request an advance; its receivables are held until an officer decides",
    "request": ReceivableRefsSerializer,
    "parameters": SIGNED_HEADERS,
    "responses": {201: AdvanceSerializer, **_WRITE_ERRORS},
    "examples": [OpenApiExample("Two invoices", value=_EXAMPLE_REFS, request_only=True)],
}
_READ_ERRORS = {
    (401, PROBLEM): UNAUTHENTICATED,
    (422, PROBLEM): INVALID_QUERY,
    (429, PROBLEM): RATE_LIMITED,
}
ADVANCE_GET: dict[str, Any] = {
    "operation_id": "advance_detail",
    "summary": "One of your advances, with its status and receivables",
    "parameters": [ref_parameter("ref", "adv_…", OpenApiParameter.PATH)],
    "responses": {
        200: AdvanceSerializer,
        (403, PROBLEM): _MERCHANT_KEY,
        (404, PROBLEM): problem("No such advance of yours."),
        **_READ_ERRORS,
    },
}
RECEIVABLES_GET: dict[str, Any] = {
    "operation_id": "receivables_list",
    "summary": "Merchant key: your receivables and verdicts. Marketplace key: what to pay the bank",
    "parameters": [
        ref_parameter("after", "next_after of the previous page (absent: from the start)."),
        LIMIT,
    ],
    "responses": {200: ReceivablePageSerializer, **_READ_ERRORS},
}
