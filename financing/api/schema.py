"""The financing API's payloads (drf-spectacular): shapes, errors, examples.

A request body is described once: the serializer the schema shows is the one the view
validates with (``config.api.inputs.body_parse``).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
)
from rest_framework import serializers

from config.api.inputs import REF_SCHEMA, BodySerializer, RefListField
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
from financing.api.reconciliation_schema import StatementJobEnvelopeSerializer
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


TERMS_HASH_HELP = (
    "SHA-256 (hex) of a price: the quote's terms_hash. Naming it accepts exactly that price."
)


def _terms_hash_field(**kwargs: Any) -> serializers.RegexField:
    return serializers.RegexField(
        r"^[0-9a-f]{64}\Z", min_length=64, max_length=64, help_text=TERMS_HASH_HELP, **kwargs
    )


class AdvanceRequestSerializer(ReceivableRefsSerializer):
    """The body of an advance request: the invoices, and optionally the quote it accepts."""

    shape = '{"receivables": ["<invoice ref>", ...], "terms_hash": "<quote terms_hash>"}'
    terms_hash = _terms_hash_field(
        required=False,
        error_messages={"invalid": "Must be a quote's terms_hash: 64 lowercase hex digits."},
    )


class AcceptSerializer(BodySerializer):
    """The body of an acceptance: the pending quote's terms_hash, as the advance shows it."""

    shape = '{"terms_hash": "<the advance\'s quote.terms_hash>"}'
    terms_hash = _terms_hash_field(
        error_messages={"invalid": "Must be a quote's terms_hash: 64 lowercase hex digits."}
    )


class WithdrawSerializer(BodySerializer):
    """The body of a withdrawal: optionally why, for the officers' record."""

    shape = '{"reason": "<why, optional>"}'
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=500, help_text="Why (optional)."
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
    mean_days = serializers.CharField(
        help_text="Advance-weighted mean tenor in days, to 0.01 (ROUND_HALF_UP)."
    )
    apr = serializers.CharField(
        help_text="APR-equivalent in percent: fee / net x 365 / mean_days, to 0.01 (ROUND_HALF_UP)."
    )
    priced_on = serializers.DateField(
        help_text="The business day the price is for: fee days run from it to each due date."
    )
    expires_at = serializers.DateTimeField(
        help_text="End of that business day in the bank's time zone; the price holds until then."
    )
    terms_hash = serializers.CharField(help_text=TERMS_HASH_HELP)
    annual_rate_bp = serializers.IntegerField()
    advance_rate_bp = serializers.IntegerField()
    day_count = serializers.ChoiceField(choices=["ACT/360", "ACT/365"])
    receivables = QuoteItemSerializer(many=True)


class AdvanceItemSerializer(serializers.Serializer[Any]):
    ref = serializers.CharField()
    face = serializers.CharField(help_text=MONEY_HELP)
    advance = serializers.CharField(help_text=MONEY_HELP)
    status = serializers.ChoiceField(choices=["held", "assigned", "released", "settled"])
    due_date = serializers.DateField()
    late_fee = serializers.CharField(help_text=MONEY_HELP)


class AdvanceQuoteStateSerializer(serializers.Serializer[Any]):
    """The price the advance carries: accepted, or (status requote) pending the merchant."""

    terms_hash = serializers.CharField(help_text="Send it to /accept to accept a pending price.")
    priced_on = serializers.DateField()
    expires_at = serializers.DateTimeField()
    accepted = serializers.BooleanField(help_text="False while a new price waits for you.")


class AdvanceSerializer(serializers.Serializer[Any]):
    ref = serializers.CharField()
    status = serializers.ChoiceField(
        choices=[
            "requested",
            "requote",
            "withdrawn",
            "approved",
            "rejected",
            "disbursed",
            "overdue",
            "repaid",
        ],
        help_text="requote: a new price waits for you to accept it (quote.terms_hash).",
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
    mean_days = serializers.CharField()
    apr = serializers.CharField()
    quote = AdvanceQuoteStateSerializer()
    non_accrual_on = serializers.DateField(allow_null=True)
    requested_at = serializers.DateTimeField()
    disbursed_at = serializers.DateTimeField(allow_null=True)
    merchant_note = serializers.CharField(
        allow_blank=True,
        help_text="The bank's note to the merchant; its internal notes never appear.",
    )
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
    "summary": "Accept today's quote by requesting the advance; its receivables are held",
    "description": "With terms_hash, only that quote is accepted: a changed price is a 409 "
    "quote_changed naming today's.",
    "request": AdvanceRequestSerializer,
    "parameters": SIGNED_HEADERS,
    "responses": {
        201: AdvanceSerializer,
        **_WRITE_ERRORS,
        (409, PROBLEM): problem(
            "quote_changed: terms_hash is not today's price; or the Idempotency-Key is in flight."
        ),
    },
    "examples": [OpenApiExample("Two invoices", value=_EXAMPLE_REFS, request_only=True)],
}
_STATE_ERRORS = {
    (400, PROBLEM): problem("Malformed JSON body or no Idempotency-Key."),
    (401, PROBLEM): UNSIGNED,
    (403, PROBLEM): _MERCHANT_KEY,
    (404, PROBLEM): problem("No such advance of yours."),
    (413, PROBLEM): TOO_LARGE,
    (415, PROBLEM): WRONG_CONTENT_TYPE,
    (422, PROBLEM): problem("An invalid body, or Idempotency-Key reused."),
    (429, PROBLEM): RATE_LIMITED,
}
# An advance's ref is always "adv_" and 16 hex digits (``financing.models.new_advance_ref``); a
# signed POST names it in its path, which is signed as sent, so the schema says exactly that.
_REF_PATH = [
    OpenApiParameter(
        "ref",
        {"type": "string", "pattern": "^adv_[0-9a-f]{16}$"},
        OpenApiParameter.PATH,
        description="The advance's ref, adv_ and 16 hex digits.",
    )
]
ADVANCE_ACCEPT_POST: dict[str, Any] = {
    "operation_id": "advance_accept",
    "summary": "Accept the new price of an advance in requote; it goes back to the officers",
    "request": AcceptSerializer,
    "parameters": [*_REF_PATH, *SIGNED_HEADERS],
    "responses": {
        200: AdvanceSerializer,
        **_STATE_ERRORS,
        (409, PROBLEM): problem(
            "quote_changed: not the pending price, or it expired (a fresh one is pending now); "
            "wrong_state: no new price waits; or the Idempotency-Key is in flight."
        ),
    },
}
ADVANCE_WITHDRAW_POST: dict[str, Any] = {
    "operation_id": "advance_withdraw",
    "summary": "Withdraw a request not yet approved; its receivables and room free at once",
    "request": WithdrawSerializer,
    "parameters": [*_REF_PATH, *SIGNED_HEADERS],
    "responses": {
        200: AdvanceSerializer,
        **_STATE_ERRORS,
        (409, PROBLEM): problem(
            "wrong_state: approved, decided or paid out already; or the Idempotency-Key is in "
            "flight."
        ),
    },
}
_READ_ERRORS = {
    (401, PROBLEM): UNAUTHENTICATED,
    (422, PROBLEM): INVALID_QUERY,
    (429, PROBLEM): RATE_LIMITED,
}
ADVANCE_GET: dict[str, Any] = {
    "operation_id": "advance_detail",
    "summary": "One of your advances, with its status and receivables",
    # The pattern, as for accept and withdraw: "quote" is no ref but the sibling POST-only path
    # (schemathesis drew it from the code's strings and got that path's 405).
    "parameters": _REF_PATH,
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


BANK_STATEMENT_POST: dict[str, Any] = {
    "operation_id": "bank_statements_create",
    "summary": "Send a camt.053 statement or camt.054 notification; its import job is queued "
    "at once (bank keys only)",
    "description": "Versions .001.02, .001.04 and .001.08, UTF-8. What the file's envelope "
    "shows is checked at once: above RECON_XML_MAX_BYTES (413 file_too_large), not UTF-8, a "
    "DTD or entity, another root or namespace (422 file_refused); nothing is written then. "
    "Otherwise 202 with the job, which a worker runs: it reads the file whole and imports it "
    "whole, or refuses the job with the precise reason (truncated XML, an unreadable entry, a "
    "statement imported before from another file: `summary.already_imported` names that "
    "job), then matches the entries; follow it at `GET /api/v1/jobs/{id}` (Location). The "
    "same bytes again: 200 with their job, `already_imported` true, and nothing changes.",
    "request": {"application/xml": OpenApiTypes.STR, "text/xml": OpenApiTypes.STR},
    "parameters": [
        OpenApiParameter(
            "file_name", REF_SCHEMA, description="The file's name, shown to officers."
        ),
        *SIGNED_HEADERS,
    ],
    "responses": {
        202: OpenApiResponse(StatementJobEnvelopeSerializer, description="The job, queued."),
        200: OpenApiResponse(
            StatementJobEnvelopeSerializer,
            description="The same file again: its job, already_imported true.",
        ),
        (400, PROBLEM): problem("No Idempotency-Key, or a file_name that is not a ref."),
        (401, PROBLEM): UNSIGNED,
        (403, PROBLEM): problem("A marketplace or merchant key: this operation takes bank keys."),
        (404, PROBLEM): problem("Not found (no resource is named by this operation)."),
        (409, PROBLEM): problem("The same Idempotency-Key is in flight."),
        (413, PROBLEM): problem(
            "The body is above the API's limit, or the file above RECON_XML_MAX_BYTES "
            "(file_too_large)."
        ),
        (415, PROBLEM): WRONG_CONTENT_TYPE,
        (422, PROBLEM): problem(
            "file_refused: the envelope is not one we read (encoding, DTD or entity, root "
            "element or namespace); the detail says which. Or the Idempotency-Key was reused."
        ),
        (429, PROBLEM): RATE_LIMITED,
    },
}
