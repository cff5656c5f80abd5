"""Receivables and their assignments to advances: read-only, written by the services."""

from __future__ import annotations

from collections import defaultdict

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from config.admin_mixins import ReadOnlyAdminMixin
from financing.eligibility import Verdict, verdicts
from financing.models import Assignment, Receivable
from ledger.money import Money


@admin.register(Receivable)
class ReceivableAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Receivable]):
    """Each receivable with its amount, due date, today's verdict and where it stands."""

    list_display = [
        "ref",
        "merchant_name",
        "debtor",
        "amount",
        "due",
        "verdict",
        "status",
        "source",
    ]
    change_list_template = "admin/compact_change_list.html"
    list_filter = ["source"]
    list_select_related = ["merchant"]
    search_fields = ["ref", "fingerprint", "merchant__legal_name", "merchant__public_id"]
    show_full_result_count = False

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        """Judge the page's receivables once per merchant, not once per row."""
        changelist = super().get_changelist_instance(request)
        rows: list[Receivable] = list(changelist.result_list)
        today = timezone.now().date()
        by_merchant: dict[int, list[Receivable]] = defaultdict(list)
        for row in rows:
            by_merchant[row.merchant_id].append(row)
        live = {
            (merchant_id, ref): (status, advance_ref)
            for merchant_id, ref, status, advance_ref in Assignment.objects.filter(
                status__in=Assignment.LIVE,
                merchant_id__in=by_merchant,
                invoice_ref__in=[row.ref for row in rows],
            ).values_list("merchant_id", "invoice_ref", "status", "advance__ref")
        }
        for merchant_id, page in by_merchant.items():
            merchant = page[0].merchant
            judged = {v.ref: v for v in verdicts(merchant, today, [r.ref for r in page])}
            for row in page:
                row.page_verdict = judged.get(row.ref)  # type: ignore[attr-defined]
                row.page_holder = live.get((merchant_id, row.ref))  # type: ignore[attr-defined]
        return changelist

    @staticmethod
    def _verdict(receivable: Receivable) -> Verdict | None:
        return getattr(receivable, "page_verdict", None)

    @admin.display(description="merchant", ordering="merchant__legal_name")
    def merchant_name(self, receivable: Receivable) -> str:
        merchant = receivable.merchant
        return format_html('<span title="{}">{}</span>', str(merchant), merchant.legal_name)

    @admin.display(description="debtor")
    def debtor(self, receivable: Receivable) -> str:
        verdict = self._verdict(receivable)
        return verdict.debtor_name if verdict else "—"

    @admin.display(description="amount")
    def amount(self, receivable: Receivable) -> str:
        verdict = self._verdict(receivable)
        return Money.display(verdict.face_minor, verdict.currency) if verdict else "—"

    @admin.display(description="due")
    def due(self, receivable: Receivable) -> str:
        verdict = self._verdict(receivable)
        return f"{verdict.due_date:%Y-%m-%d}" if verdict else "—"

    @admin.display(description="verdict today")
    def verdict(self, receivable: Receivable) -> str:
        verdict = self._verdict(receivable)
        if verdict is None:
            return "—"
        if verdict.eligible:
            return format_html('<span class="chainfin-ok">{}</span>', "fundable")
        return format_html(
            '<span class="chainfin-bad" title="{}">{}</span>',
            "; ".join(f"{r.code}: {r.message}" for r in verdict.reasons),
            verdict.codes[0] + (f" +{len(verdict.codes) - 1}" if len(verdict.codes) > 1 else ""),
        )

    @admin.display(description="status")
    def status(self, receivable: Receivable) -> str:
        holder = getattr(receivable, "page_holder", None)
        if holder is None:
            return "free"
        status, advance_ref = holder
        return f"{Assignment.Status(status).label.lower()} ({advance_ref})"


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Assignment]):
    list_display = [
        "invoice_ref",
        "advance",
        "merchant",
        "debtor",
        "face",
        "advance_amount",
        "due_date",
        "status",
    ]
    list_filter = ["status"]
    list_select_related = ["advance", "merchant", "debtor"]
    search_fields = ["invoice_ref", "advance__ref", "merchant__legal_name", "debtor__name"]

    @admin.display(description="face", ordering="face_minor")
    def face(self, assignment: Assignment) -> str:
        return Money.display(assignment.face_minor, assignment.advance.currency)

    @admin.display(description="advance amount", ordering="advance_minor")
    def advance_amount(self, assignment: Assignment) -> str:
        return Money.display(assignment.advance_minor, assignment.advance.currency)
