"""Money movement in the admin: merchants' bank accounts (masked; proposed by one officer,
confirmed by another), payments and their pain.001 files, pain.002 status reports and bank
statements (camt.053/.054) uploaded by officers. Every write goes through a service; no page
shows an account number, only its mask."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from config.admin_mixins import ReadOnlyAdminMixin
from financing.admin.bank_statement_jobs import UPLOAD_PERMISSION
from financing.admin.formatting import merchant_cell, refusal, with_hover
from financing.admin.writes import officer_of, proposal_posted
from financing.exceptions import FinancingError
from financing.models import BankStatement, Payment, PaymentBatch, ReconJob, StatementEntry
from financing.services.bank_accounts import PROPOSE_PERMISSION, bank_account_propose
from financing.services.payment_files import (
    BATCH_PERMISSION,
    payment_batch_create,
    payment_batch_xml,
    payment_status_import,
)
from ledger.money import Money
from merchants.models import BankAccount, Merchant

FORM_TEMPLATE = "admin/financing/money/form.html"
CHANGE_LIST_TEMPLATE = "admin/financing/money/change_list.html"
# The same limit as the importers', so a browser upload is refused before it is read.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


def _form_page(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    form: forms.Form,
    *,
    title: str,
    action: str,
    explanation: str = "",
) -> HttpResponse:
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": title,
        "form": form,
        "action": action,
        "explanation": explanation,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, FORM_TEMPLATE, context)


def _tools(request: HttpRequest, *tools: tuple[str, str, str]) -> dict[str, Any]:
    """The changelist buttons (url name, label, permission) the officer may press."""
    officer = officer_of(request)
    return {
        "money_tools": [
            {"url": reverse(name), "label": label}
            for name, label, permission in tools
            if officer.has_perm(permission)
        ]
    }


class _Secret(forms.CharField):
    """An account number typed in: never echoed back into the page, even on an error."""

    widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"})


class BankAccountProposeForm(forms.Form):
    merchant = forms.ModelChoiceField(queryset=Merchant.objects.order_by("legal_name"))
    holder_name = forms.CharField(max_length=70, help_text="As the bank knows the holder.")
    iban = _Secret(required=False, label="IBAN")
    account_number = _Secret(required=False, help_text="Instead of an IBAN, with the BIC.")
    bic = forms.CharField(max_length=11, required=False, label="BIC")
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="How the account was verified; the confirming senior officer reads it.",
    )


@admin.register(BankAccount)
class BankAccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[BankAccount]):
    """Accounts shown masked; a new one is proposed here and confirmed under Risk changes."""

    list_display = ["merchant", "holder_name", "masked", "bic", "kind", "status", "created_at"]
    list_filter = ["status", "kind"]
    list_select_related = ["merchant"]
    search_fields = ["merchant__legal_name", "merchant__public_id", "holder_name"]
    fields = ["merchant", "holder_name", "masked", "bic", "kind", "status", "created_at"]
    change_list_template = CHANGE_LIST_TEMPLATE

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        tools = _tools(
            request,
            ("admin:merchants_bankaccount_propose", "Propose an account…", PROPOSE_PERMISSION),
        )
        return super().changelist_view(request, tools | (extra_context or {}))

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "propose/",
                self.admin_site.admin_view(self.propose_view),
                name="merchants_bankaccount_propose",
            )
        ]
        return [*own, *super().get_urls()]

    def propose_view(self, request: HttpRequest) -> HttpResponse:
        """Propose a merchant's new payee account, for a different senior officer to confirm."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = BankAccountProposeForm(request.POST or None)
        proposed = proposal_posted(
            self,
            request,
            form,
            lambda: bank_account_propose(
                officer=officer_of(request), now=timezone.now(), **form.cleaned_data
            ),
        )
        if proposed is not None:
            return proposed
        return _form_page(
            self, request, form, title="Propose a merchant's bank account", action="Propose"
        )


# A word per kind and status in the list, the whole label on hover: a row then fits a laptop.
_KIND_WORD: dict[str, str] = {
    Payment.Kind.DISBURSEMENT: "Disbursement",
    Payment.Kind.RELEASE: "Release",
}
_STATUS_WORD: dict[str, str] = {
    Payment.Status.PENDING: "Pending",
    Payment.Status.BATCHED: "In a file",
    Payment.Status.ACCEPTED: "Accepted",
    Payment.Status.REJECTED: "Rejected",
    Payment.Status.BOOKED: "Booked",
}


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Payment]):
    """Money owed to merchants by credit transfer; select pending ones to write a file."""

    list_display = [
        "end_to_end_id",
        "merchant_name",
        "kind_word",
        "amount",
        "status_word",
        "account",
        "batch",
        "created_at",
    ]
    list_filter = ["status", "kind", "currency"]
    list_select_related = ["merchant", "bank_account", "batch"]
    search_fields = ["end_to_end_id", "source_key", "merchant__legal_name"]
    actions = ["batch_pain_001_001_09", "batch_pain_001_001_03"]
    change_list_template = "admin/compact_change_list.html"

    @admin.display(description="merchant", ordering="merchant__legal_name")
    def merchant_name(self, payment: Payment) -> str:
        return merchant_cell(payment.merchant)

    @admin.display(description="amount")
    def amount(self, payment: Payment) -> str:
        return Money.display(payment.amount_minor, payment.currency)

    @admin.display(description="kind", ordering="kind")
    def kind_word(self, payment: Payment) -> str:
        return with_hover(_KIND_WORD[payment.kind], Payment.Kind(payment.kind).label)

    @admin.display(description="status", ordering="status")
    def status_word(self, payment: Payment) -> str:
        return with_hover(_STATUS_WORD[payment.status], Payment.Status(payment.status).label)

    @admin.display(description="account")
    def account(self, payment: Payment) -> str:
        return payment.bank_account.masked if payment.bank_account else "— none yet"

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if not officer_of(request).has_perm(BATCH_PERMISSION):
            return {}
        return actions

    @admin.action(description="Write a pain.001.001.09 file of the selected pending payments")
    def batch_pain_001_001_09(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        self._batch(request, queryset, "pain.001.001.09")

    @admin.action(description="Write a pain.001.001.03 file of the selected pending payments")
    def batch_pain_001_001_03(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        self._batch(request, queryset, "pain.001.001.03")

    def _batch(self, request: HttpRequest, queryset: QuerySet[Payment], scheme: str) -> None:
        """One file per currency among the selection; each then downloads from its page."""
        selected = list(queryset.values_list("pk", "currency"))
        for currency in sorted({c for _, c in selected}):
            try:
                batch = payment_batch_create(
                    currency=currency,
                    scheme=scheme,
                    officer=officer_of(request),
                    now=timezone.now(),
                    payment_ids=[pk for pk, c in selected if c == currency],
                )
            except FinancingError as exc:
                self.message_user(request, f"{currency}: {refusal(exc)}", messages.ERROR)
                continue
            url = reverse("admin:financing_paymentbatch_download", args=[quote(batch.pk)])
            self.message_user(
                request,
                format_html(
                    '{} file {} of {} payments written: <a href="{}">download</a>.',
                    scheme,
                    batch.msg_id,
                    batch.payments_count,
                    url,
                ),
                messages.SUCCESS,
            )


class StatusReportForm(forms.Form):
    file = forms.FileField(help_text="A pain.002 payment status report from the bank.")


def _uploaded(form: forms.Form) -> tuple[str, bytes] | None:
    upload = form.cleaned_data["file"]
    if upload.size > MAX_UPLOAD_BYTES:
        form.add_error("file", f"The file has {upload.size:,} bytes; the limit is 20 MiB.")
        return None
    return upload.name, upload.read()


def _job_message(model_admin: admin.ModelAdmin[Any], request: HttpRequest, job: ReconJob) -> None:
    if job.status == ReconJob.Status.REFUSED:
        model_admin.message_user(request, f"Refused: {job.refusal}", messages.ERROR)
    else:
        counts = ", ".join(f"{k}: {v}" for k, v in job.summary.items())
        model_admin.message_user(
            request, f"{job.file_name} ({job.file_format}) read: {counts}.", messages.SUCCESS
        )


@admin.register(PaymentBatch)
class PaymentBatchAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[PaymentBatch]):
    list_display = [
        "msg_id",
        "scheme",
        "currency",
        "payments_count",
        "control_sum",
        "created_at",
        "download",
    ]
    list_filter = ["scheme", "currency"]
    fields = [
        "msg_id",
        "scheme",
        "currency",
        "payments_count",
        "control_sum",
        "file_sha256",
        "created_at",
        "download",
    ]
    readonly_fields = ["control_sum", "download"]
    change_list_template = CHANGE_LIST_TEMPLATE

    @admin.display(description="control sum")
    def control_sum(self, batch: PaymentBatch) -> str:
        return Money.display(batch.control_sum_minor, batch.currency)

    @admin.display(description="file")
    def download(self, batch: PaymentBatch) -> str:
        url = reverse("admin:financing_paymentbatch_download", args=[quote(batch.pk)])
        return format_html('<a href="{}">download {}.xml</a>', url, batch.msg_id)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        tools = _tools(
            request,
            ("admin:financing_paymentbatch_status", "Upload a status report…", BATCH_PERMISSION),
        )
        return super().changelist_view(request, tools | (extra_context or {}))

    def get_urls(self) -> list[URLPattern]:
        site = self.admin_site
        own = [
            path(
                "status-report/",
                site.admin_view(self.status_view),
                name="financing_paymentbatch_status",
            ),
            path(
                "<path:object_id>/download/",
                site.admin_view(self.download_view),
                name="financing_paymentbatch_download",
            ),
        ]
        return [*own, *super().get_urls()]

    def download_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The file as generated; it names accounts in full, so only who may write one gets it."""
        if not officer_of(request).has_perm(BATCH_PERMISSION):
            raise PermissionDenied
        batch = self.get_object(request, unquote(object_id))
        if batch is None:
            raise Http404(f"No payment file {object_id}.")
        response = HttpResponse(payment_batch_xml(batch=batch), content_type="application/xml")
        response["Content-Disposition"] = f'attachment; filename="{batch.msg_id}.xml"'
        return response

    def status_view(self, request: HttpRequest) -> HttpResponse:
        """Read a pain.002: accepted and rejected payments, a break per rejection."""
        if not officer_of(request).has_perm(BATCH_PERMISSION):
            raise PermissionDenied
        form = StatusReportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid() and (upload := _uploaded(form)):
            job = payment_status_import(
                file_name=upload[0],
                data=upload[1],
                uploaded_by=officer_of(request),
                now=timezone.now(),
            )
            _job_message(self, request, job)
            return HttpResponseRedirect(reverse("admin:financing_paymentbatch_changelist"))
        return _form_page(self, request, form, title="Upload a pain.002", action="Upload")


ENTRY_FIELDS = (
    "line",
    "direction",
    "amount",
    "booking_date",
    "value_date",
    "booked",
    "entry_ref",
    "end_to_end_ids",
    "references",
    "counterparty_name",
    "match_status",
)


class StatementEntryInline(ReadOnlyAdminMixin, admin.TabularInline[StatementEntry, Any]):
    model = StatementEntry
    fields = readonly_fields = ENTRY_FIELDS
    extra = 0

    @admin.display(description="amount")
    def amount(self, entry: StatementEntry) -> str:
        return Money.display(entry.amount_minor, entry.currency)


@admin.register(BankStatement)
class BankStatementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[BankStatement]):
    list_display = [
        "message_id",
        "statement_id",
        "kind",
        "account_iban_masked",
        "currency",
        "entries",
        "job",
        "created_at",
    ]
    list_filter = ["kind", "currency"]
    search_fields = ["message_id", "statement_id"]
    inlines = [StatementEntryInline]
    change_list_template = CHANGE_LIST_TEMPLATE

    @admin.display(description="entries")
    def entries(self, statement: BankStatement) -> str:
        return str(statement.entries.count())

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        tools = _tools(
            request,
            ("admin:financing_bankstatementjob_upload", "Upload a statement…", UPLOAD_PERMISSION),
        )
        return super().changelist_view(request, tools | (extra_context or {}))
