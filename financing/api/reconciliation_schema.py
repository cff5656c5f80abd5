"""The settlement report and job operations' payloads (drf-spectacular)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from config.api.schema import (
    PROBLEM,
    RATE_LIMITED,
    SIGNED_HEADERS,
    TOO_LARGE,
    UNAUTHENTICATED,
    UNSIGNED,
    WRONG_CONTENT_TYPE,
    problem,
)

_MARKETPLACE_KEY = problem("A merchant key: these operations take marketplace keys.")
_JOB_KEY = problem("A merchant key: jobs are followed with marketplace or bank keys.")


class JobSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(["settlement_report", "bank_statement", "payment_status"])
    status = serializers.ChoiceField(["queued", "running", "done", "refused"])
    file_name = serializers.CharField()
    file_sha256 = serializers.CharField(help_text="Hex SHA-256 of the file: one job per file.")
    format = serializers.CharField(
        allow_null=True,
        help_text="Reports: chainfin, amazon-v2, shopify-payments, stripe-itemized. Bank "
        "statements: camt.053.001.02 … camt.054.001.08.",
    )
    lines_total = serializers.IntegerField(
        allow_null=True, help_text="Report lines or statement entries; null until counted."
    )
    lines_done = serializers.IntegerField()
    percent = serializers.IntegerField(min_value=0, max_value=100)
    matched = serializers.IntegerField()
    breaks_found = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    summary = serializers.DictField(
        help_text="When done. Reports: format, lines, matched, unallocated, payouts, period, "
        "breaks by kind. Bank statements: message_id, statements, entries, matching "
        "(confirmed, suggested, ambiguous, unmatched, not_on_statement); refused as a repeat "
        "of an imported statement: already_imported (the first job and its summary)."
    )
    refusal = serializers.CharField(
        allow_null=True, help_text="Why the file was refused: line, column and reason."
    )


class JobEnvelopeSerializer(serializers.Serializer[Any]):
    job = JobSerializer()


class StatementJobEnvelopeSerializer(JobEnvelopeSerializer):
    already_imported = serializers.BooleanField(
        help_text="True when these bytes were sent before: the job is theirs, nothing changed."
    )


SETTLEMENT_REPORT_POST: dict[str, Any] = {
    "operation_id": "settlement_report_upload",
    "summary": "Upload a settlement report; its reconciliation job is queued at once",
    "parameters": SIGNED_HEADERS,
    "request": {
        "text/csv": OpenApiTypes.STR,
        "text/tab-separated-values": OpenApiTypes.STR,
        # Also taken (README): application/octet-stream, and a multipart form with a 'file'
        # part, left out here because a generated client cannot sign a form whose boundary
        # changes on every send.
    },
    "responses": {
        202: OpenApiResponse(JobEnvelopeSerializer, description="The job, queued."),
        200: OpenApiResponse(JobEnvelopeSerializer, description="The same file again: its job."),
        (400, PROBLEM): problem("No Idempotency-Key, or a form without its 'file' part."),
        (401, PROBLEM): UNSIGNED,
        (403, PROBLEM): _MARKETPLACE_KEY,
        (404, PROBLEM): problem("Not used: the report names your own payouts."),
        (409, PROBLEM): problem(
            "The same Idempotency-Key is in flight, or these bytes are another party's report."
        ),
        (413, PROBLEM): TOO_LARGE,
        (415, PROBLEM): WRONG_CONTENT_TYPE,
        (422, PROBLEM): problem("Idempotency-Key reused for another request."),
        (429, PROBLEM): RATE_LIMITED,
    },
}
JOB_GET: dict[str, Any] = {
    "operation_id": "job_detail",
    "summary": "A reconciliation job of yours: progress, then its summary or refusal",
    "description": "A marketplace key sees the settlement reports its marketplace uploaded; "
    "a bank key the bank statement imports. Any other job is 404.",
    "parameters": [
        OpenApiParameter("job_id", int, OpenApiParameter.PATH, description="The job's id.")
    ],
    "responses": {
        200: JobEnvelopeSerializer,
        (401, PROBLEM): UNAUTHENTICATED,
        (403, PROBLEM): _JOB_KEY,
        (404, PROBLEM): problem("No such job of yours."),
        (429, PROBLEM): RATE_LIMITED,
    },
}
