"""``POST /api/v1/bank-statements``: the bank's systems send a camt.053 statement or camt.054
notification; only a bank key may (config/api/permissions.py ``IsBankKey``)."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from config.api.authentication import SignedApiKeyAuthentication
from config.api.idempotency import idempotent
from config.api.inputs import ref_query_param
from config.api.parsers import RawTextXMLParser, RawXMLParser
from config.api.permissions import IsBankKey, api_principal
from config.api.problems import problem_response
from config.api.responses import json_response
from config.api.throttling import CredentialRateThrottle
from financing.api import schema
from financing.models import ReconJob
from financing.services.bank_statements import bank_statement_import


def job_json(job: ReconJob) -> dict[str, Any]:
    return {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "file_name": job.file_name,
        "file_sha256": job.file_sha256,
        "file_format": job.file_format,
        "lines_total": job.lines_total,
        "lines_done": job.lines_done,
        "summary": job.summary,
        "refusal": job.refusal,
    }


class BankStatementCreateApi(APIView):
    authentication_classes = [SignedApiKeyAuthentication]
    permission_classes = [IsBankKey]
    throttle_classes = [CredentialRateThrottle]
    parser_classes = [RawXMLParser, RawTextXMLParser]

    @extend_schema(**schema.BANK_STATEMENT_POST)
    def post(self, request: Request) -> HttpResponse:
        return idempotent(request, api_principal(request).scope, lambda: self._import(request))

    def _import(self, request: Request) -> HttpResponse:
        # RawXMLParser hands over bytes; DRF skips the parser (and gives {}) for an empty body.
        raw = request.data if isinstance(request.data, bytes) else b""
        file_name = ref_query_param(request, "file_name") or "api-upload.xml"
        job = bank_statement_import(
            file_name=file_name, data=raw, uploaded_by=None, now=timezone.now()
        )
        if job.status == ReconJob.Status.REFUSED:
            # The refused job stays, so the same file again gets the same answer at once.
            return problem_response(
                422, "file_refused", "The file was refused.", f"Job {job.pk}: {job.refusal}"
            )
        return json_response(job_json(job), status=201)
