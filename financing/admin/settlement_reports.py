"""Marketplace settlement reports: officers upload one, watch its job's progress bar fill, and
read the final summary (``financing.admin.recon_jobs``); the breaks wait in the breaks queue."""

from __future__ import annotations

from collections.abc import Iterable

from django import forms
from django.contrib import admin
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest
from django.utils import timezone

from financing.admin.recon_jobs import ReconJobAdmin
from financing.admin.writes import officer_of
from financing.models import ReconJob, SettlementReportJob
from financing.reconciliation.reports import settlement_report_upload
from merchants.models import Marketplace


class UploadForm(forms.Form):
    marketplace = forms.ModelChoiceField(queryset=Marketplace.objects.all())
    report = forms.FileField(
        help_text="Chainfin's column set (CSV), an Amazon V2 flat file (TSV), a Shopify payments "
        "transactions export or a Stripe itemized payout reconciliation report (CSV), UTF-8."
    )


def _chunks(upload: UploadedFile) -> Iterable[bytes]:
    # Django spools an upload past FILE_UPLOAD_MAX_MEMORY_SIZE to a temporary file: read it in
    # chunks, never whole.
    yield from upload.chunks()


@admin.register(SettlementReportJob)
class SettlementReportJobAdmin(ReconJobAdmin):
    kind = ReconJob.Kind.SETTLEMENT_REPORT
    upload_permission = "financing.upload_settlementreport"
    upload_form = UploadForm
    upload_label = "Upload a report"
    list_display = [
        "file_name",
        "marketplace",
        *ReconJobAdmin.list_display[1:],
    ]
    list_filter = ["status", "marketplace", "file_format"]
    list_select_related = ["marketplace"]

    def upload(self, request: HttpRequest, form: forms.Form) -> tuple[ReconJob, bool]:
        # Another marketplace's file (ReportUploadedElsewhere) is said on the form.
        report = form.cleaned_data["report"]
        result = settlement_report_upload(
            chunks=_chunks(report),
            file_name=report.name or "settlement-report",
            marketplace=form.cleaned_data["marketplace"],
            uploaded_by=officer_of(request),
            now=timezone.now(),
        )
        return result.job, result.created
