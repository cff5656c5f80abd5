"""Bank statements (camt.053/.054) uploaded by officers: the upload refuses at once what the
file's envelope shows, else queues the import and shows its progress (entries imported and
matched, breaks so far) and final summary, as for settlement reports
(``financing.admin.recon_jobs``). The statements themselves are under *Bank statements*."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone

from financing.admin.recon_jobs import ReconJobAdmin
from financing.admin.writes import officer_of
from financing.models import BankStatementJob, ReconJob
from financing.services.bank_statements import bank_statement_upload

UPLOAD_PERMISSION = "financing.add_bankstatement"
# The importer's limit (RECON_XML_MAX_BYTES' default), so a browser upload is refused unread.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


class StatementForm(forms.Form):
    file = forms.FileField(help_text="A camt.053 statement or camt.054 notification, UTF-8.")

    def clean_file(self) -> object:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file has {upload.size:,} bytes; the limit is {MAX_UPLOAD_BYTES:,}."
            )
        return upload


@admin.register(BankStatementJob)
class BankStatementJobAdmin(ReconJobAdmin):
    kind = ReconJob.Kind.BANK_STATEMENT
    upload_permission = UPLOAD_PERMISSION
    upload_form = StatementForm
    upload_label = "Upload a statement"
    upload_explanation = (
        "camt.053 or camt.054, versions .02, .04 and .08. The same file twice is one job and "
        "changes nothing."
    )
    unit = "entries"

    def upload(self, request: HttpRequest, form: forms.Form) -> tuple[ReconJob, bool]:
        upload = form.cleaned_data["file"]
        result = bank_statement_upload(
            file_name=upload.name or "statement.xml",
            data=upload.read(),
            uploaded_by=officer_of(request),
            now=timezone.now(),
        )
        return result.job, result.created
