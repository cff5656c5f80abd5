"""What the admins of reconciliation jobs share: the list with its progress bars, the upload
page, and the progress page that polls a small JSON view (the document ``GET /api/v1/jobs/{id}``
gives) once a second until the job is done or refused, then shows its summary.

A subclass names its kind, its upload permission and form, and ``upload`` (one service call
returning the job); the breaks a job finds wait in the breaks queue.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from config.admin_mixins import ReadOnlyAdminMixin
from financing.admin.formatting import refusal
from financing.admin.writes import object_seen, officer_of
from financing.exceptions import FinancingError
from financing.models import ReconJob
from financing.reconciliation.selectors import recon_job_progress

FORM_TEMPLATE = "admin/financing/money/form.html"
CHANGE_LIST_TEMPLATE = "admin/financing/reconjob/change_list.html"
PROGRESS_TEMPLATE = "admin/financing/reconjob/progress.html"


class ReconJobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Any]):
    kind: str
    upload_permission: str
    upload_form: type[forms.Form]
    upload_label = "Upload a file"
    upload_explanation = "The same file twice is one job: uploading it again shows its result."
    unit = "lines"  # what the job counts: report lines, statement entries

    list_display = [
        "file_name",
        "file_format",
        "status",
        "progress",
        "matched",
        "breaks_found",
        "created_at",
        "watch",
    ]
    list_filter = ["status", "file_format"]
    search_fields = ["file_name", "file_sha256"]
    change_list_template = CHANGE_LIST_TEMPLATE

    def upload(self, request: HttpRequest, form: forms.Form) -> tuple[ReconJob, bool]:
        """Hand the uploaded file to the service: its job, and whether it is new.

        :raises FinancingError: refused at once, said on the form.
        """
        raise NotImplementedError

    def _name(self, view: str) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{view}"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).filter(kind=self.kind)

    @admin.display(description="progress")
    def progress(self, job: ReconJob) -> str:
        return format_html(
            '<progress max="100" value="{}"></progress> {}',
            recon_job_progress(job)["percent"],
            f"{job.lines_done:,} / {job.lines_total:,}" if job.lines_total is not None else "",
        )

    @admin.display(description="")
    def watch(self, job: ReconJob) -> str:
        url = reverse(f"admin:{self._name('progress')}", args=[quote(job.pk)])
        return format_html('<a href="{}">Progress…</a>', url)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        own = [
            path("upload/", view(self.upload_view), name=self._name("upload")),
            path(
                "<path:object_id>/progress/",
                view(self.progress_view),
                name=self._name("progress"),
            ),
            path(
                "<path:object_id>/progress.json",
                view(self.progress_json_view),
                name=self._name("progress_json"),
            ),
        ]
        return [*own, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        may_upload = officer_of(request).has_perm(self.upload_permission)
        tools = {
            "upload_url": reverse(f"admin:{self._name('upload')}") if may_upload else "",
            "upload_label": self.upload_label,
        }
        return super().changelist_view(request, {**(extra_context or {}), **tools})

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a file; its job is queued and the officer lands on its progress page."""
        if not officer_of(request).has_perm(self.upload_permission):
            raise PermissionDenied
        form = self.upload_form(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                job, created = self.upload(request, form)
            except FinancingError as exc:
                form.add_error(None, refusal(exc))
            else:
                if not created:
                    self.message_user(
                        request,
                        f"Already uploaded as job {job.pk} ({job.file_name}): nothing changed; "
                        "here is its result.",
                        messages.INFO,
                    )
                url = reverse(f"admin:{self._name('progress')}", args=[quote(job.pk)])
                return HttpResponseRedirect(url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": self.upload_label,
            "form": form,
            "action": "Upload",
            "explanation": self.upload_explanation,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, FORM_TEMPLATE, context)

    def _job(self, request: HttpRequest, object_id: str) -> ReconJob:
        job: ReconJob = object_seen(self, request, object_id)
        return job

    def progress_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        job = self._job(request, object_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{str(self.opts.verbose_name).capitalize()} {job.file_name}",
            "job": recon_job_progress(job),
            "unit": self.unit,
            "poll_url": reverse(f"admin:{self._name('progress_json')}", args=[quote(job.pk)]),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, PROGRESS_TEMPLATE, context)

    def progress_json_view(self, request: HttpRequest, object_id: str) -> JsonResponse:
        return JsonResponse({"job": recon_job_progress(self._job(request, object_id))})
