"""``POST /api/v1/bank-statements``: the bank's systems send a camt.053 statement or camt.054
notification; only a bank key may (config/api/permissions.py ``IsBankKey``).

The answer comes at once: what the file's envelope shows wrong (size, encoding, a DTD or
entity, another namespace) is a 4xx problem with nothing written; otherwise 202 with the
import's job, which a worker runs (``GET /api/v1/jobs/{id}`` follows it), or 200 with the job
of the same bytes sent before, marked ``already_imported``.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from config.api.authentication import SignedApiKeyAuthentication
from config.api.idempotency import idempotent
from config.api.inputs import ref_query_param
from config.api.parsers import RawTextXMLParser, RawXMLParser
from config.api.permissions import IsBankKey, api_principal
from config.api.responses import json_response
from config.api.throttling import CredentialRateThrottle
from financing.api import schema
from financing.reconciliation.selectors import recon_job_progress
from financing.services.bank_statements import bank_statement_upload


class BankStatementCreateApi(APIView):
    authentication_classes = [SignedApiKeyAuthentication]
    permission_classes = [IsBankKey]
    throttle_classes = [CredentialRateThrottle]
    parser_classes = [RawXMLParser, RawTextXMLParser]

    @extend_schema(**schema.BANK_STATEMENT_POST)
    def post(self, request: Request) -> HttpResponse:
        return idempotent(request, api_principal(request).scope, lambda: self._upload(request))

    def _upload(self, request: Request) -> HttpResponse:
        # RawXMLParser hands over bytes; DRF skips the parser (and gives {}) for an empty body.
        raw = request.data if isinstance(request.data, bytes) else b""
        file_name = ref_query_param(request, "file_name") or "api-upload.xml"
        # A refusal at once (StatementRefused) is mapped by the one exception handler.
        result = bank_statement_upload(
            file_name=file_name, data=raw, uploaded_by=None, now=timezone.now()
        )
        response = json_response(
            {"job": recon_job_progress(result.job), "already_imported": not result.created},
            status=202 if result.created else 200,
        )
        response["Location"] = reverse("api-job", args=[result.job.pk])
        return response
