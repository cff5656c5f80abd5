"""Settlement reports from marketplaces, and the progress of the jobs that reconcile them.

``POST /api/v1/settlement-reports`` takes the report as the raw body (text/csv,
text/tab-separated-values, application/octet-stream) or as the ``file`` part of a multipart
form, signed like every POST; it answers 202 with the job at once (200 with the same job when
the same file was sent before). ``GET /api/v1/jobs/{id}`` shows a job to the party whose file
it reads: a settlement report's to the marketplace that uploaded it, a bank statement import's
to the bank's keys; to anyone else it is 404.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any, Protocol

from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.views import APIView

from config.api.authentication import SignedApiKeyAuthentication
from config.api.idempotency import idempotent
from config.api.permissions import (
    IsMarketplaceKey,
    IsMarketplaceOrBankKey,
    api_principal,
    calling_marketplace,
)
from config.api.problems import ApiProblem
from config.api.responses import json_response
from config.api.throttling import CredentialRateThrottle
from financing.api import reconciliation_schema as schema
from financing.reconciliation.reports import settlement_report_upload
from financing.reconciliation.selectors import recon_job_of_party, recon_job_progress

CHUNK = 64 * 1024


class _RawReportParser(BaseParser):
    """Leaves the body where it is: the view reads it in chunks."""

    def parse(
        self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None
    ) -> dict[str, Any]:
        return {}


class _CsvParser(_RawReportParser):
    media_type = "text/csv"


class _TsvParser(_RawReportParser):
    media_type = "text/tab-separated-values"


class _OctetParser(_RawReportParser):
    media_type = "application/octet-stream"


class _MarketplaceApi(APIView):
    authentication_classes = [SignedApiKeyAuthentication]
    permission_classes = [IsMarketplaceKey]
    throttle_classes = [CredentialRateThrottle]


class _Readable(Protocol):
    def read(self, size: int) -> bytes: ...


def _chunks(handle: _Readable) -> Iterable[bytes]:
    while chunk := handle.read(CHUNK):
        yield chunk


class SettlementReportCreateApi(_MarketplaceApi):
    parser_classes = [_CsvParser, _TsvParser, _OctetParser, MultiPartParser]

    @extend_schema(**schema.SETTLEMENT_REPORT_POST)
    def post(self, request: Request) -> HttpResponse:
        calling_marketplace(request)  # a merchant key is refused before anything is read
        return idempotent(request, api_principal(request).scope, lambda: self._upload(request))

    def _upload(self, request: Request) -> HttpResponse:
        multipart = request.content_type.startswith("multipart/")
        upload = request.FILES.get("file") if multipart else None
        if multipart and upload is None:
            raise ApiProblem(400, "file_missing", "Send the report as the form's 'file' part.")
        # The signature check has read the body already; it is read here from that copy.
        handle = upload.file if upload is not None else request._request
        name = upload.name if upload is not None and upload.name else "settlement-report"
        # Another marketplace's file is refused by the one exception handler (409).
        result = settlement_report_upload(
            chunks=_chunks(handle),
            file_name=name,
            marketplace=calling_marketplace(request),
            uploaded_by=None,
            now=timezone.now(),
        )
        response = json_response(
            {"job": recon_job_progress(result.job)}, status=202 if result.created else 200
        )
        response["Location"] = reverse("api-job", args=[result.job.pk])
        return response


class JobDetailApi(APIView):
    authentication_classes = [SignedApiKeyAuthentication]
    permission_classes = [IsMarketplaceOrBankKey]
    throttle_classes = [CredentialRateThrottle]

    @extend_schema(**schema.JOB_GET)
    def get(self, request: Request, job_id: int) -> HttpResponse:
        principal = api_principal(request)
        job = recon_job_of_party(
            marketplace=principal.marketplace, bank=principal.bank, job_id=job_id
        )
        if job is None:
            raise ApiProblem(404, "job_not_found", "No such job.")
        return json_response({"job": recon_job_progress(job)})
