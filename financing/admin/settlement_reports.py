"""Marketplace settlement reports: officers upload one, watch its job's progress bar fill, and
read the final summary; the breaks themselves wait in the breaks queue.

The progress page polls a small JSON view (the same document ``GET /api/v1/jobs/{id}`` gives)
once a second until the job is done or refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from config.admin_mixins import ReadOnlyAdminMixin
from financing.admin.formatting import refusal
from financing.admin.writes import officer_of
from financing.models import SettlementReportJob
from financing.reconciliation.reports import ReportUploadedElsewhere, settlement_report_upload
from financing.reconciliation.selectors import recon_job_progress
from merchants.models import Marketplace

UPLOAD_PERMISSION = "financing.upload_settlementreport"
UPLOAD_TEMPLATE = "admin/financing/settlementreportjob/upload.html"
PROGRESS_TEMPLATE = "admin/financing/settlementreportjob/progress.html"


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
class SettlementReportJobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[SettlementReportJob]):
    list_display = [
        "file_name",
        "marketplace",
        "file_format",
        "status",
        "progress",
        "matched",
        "breaks_found",
        "created_at",
        "watch",
    ]
    list_filter = ["status", "marketplace", "file_format"]
    list_select_related = ["marketplace"]
    search_fields = ["file_name", "file_sha256"]
    change_list_template = "admin/financing/settlementreportjob/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[SettlementReportJob]:
        kind = SettlementReportJob.Kind.SETTLEMENT_REPORT
        return super().get_queryset(request).filter(kind=kind)

    @admin.display(description="progress")
    def progress(self, job: SettlementReportJob) -> str:
        return format_html(
            '<progress max="100" value="{}"></progress> {}',
            recon_job_progress(job)["percent"],
            f"{job.lines_done:,} / {job.lines_total:,}" if job.lines_total is not None else "",
        )

    @admin.display(description="")
    def watch(self, job: SettlementReportJob) -> str:
        url = reverse("admin:financing_settlementreportjob_progress", args=[quote(job.pk)])
        return format_html('<a href="{}">Progress…</a>', url)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        own = [
            path("upload/", view(self.upload_view), name="financing_settlementreportjob_upload"),
            path(
                "<path:object_id>/progress/",
                view(self.progress_view),
                name="financing_settlementreportjob_progress",
            ),
            path(
                "<path:object_id>/progress.json",
                view(self.progress_json_view),
                name="financing_settlementreportjob_progress_json",
            ),
        ]
        return [*own, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        may_upload = officer_of(request).has_perm(UPLOAD_PERMISSION)
        return super().changelist_view(request, {**(extra_context or {}), "may_upload": may_upload})

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a report; its job is queued and the officer lands on its progress page."""
        officer = officer_of(request)
        if not officer.has_perm(UPLOAD_PERMISSION):
            raise PermissionDenied
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            report = form.cleaned_data["report"]
            try:
                result = settlement_report_upload(
                    chunks=_chunks(report),
                    file_name=report.name or "settlement-report",
                    marketplace=form.cleaned_data["marketplace"],
                    uploaded_by=officer,
                    now=timezone.now(),
                )
            except ReportUploadedElsewhere as exc:
                form.add_error(None, refusal(exc))
            else:
                url = "admin:financing_settlementreportjob_progress"
                return HttpResponseRedirect(reverse(url, args=[quote(result.job.pk)]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Upload a settlement report",
            "form": form,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, UPLOAD_TEMPLATE, context)

    def _job(self, request: HttpRequest, object_id: str) -> SettlementReportJob:
        job = self.get_object(request, unquote(object_id))
        if job is None:
            raise Http404(f"No settlement report job {object_id}.")
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        return job

    def progress_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        job = self._job(request, object_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Settlement report {job.file_name}",
            "job": recon_job_progress(job),
            "poll_url": reverse(
                "admin:financing_settlementreportjob_progress_json", args=[quote(job.pk)]
            ),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, PROGRESS_TEMPLATE, context)

    def progress_json_view(self, request: HttpRequest, object_id: str) -> JsonResponse:
        return JsonResponse({"job": recon_job_progress(self._job(request, object_id))})
