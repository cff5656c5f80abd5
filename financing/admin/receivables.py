"""Receivables and their assignments to advances: read-only, written by the services."""

from __future__ import annotations

from django.contrib import admin

from config.admin_mixins import ReadOnlyAdminMixin
from financing.models import Assignment, Receivable
from ledger.money import Money


@admin.register(Receivable)
class ReceivableAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Receivable]):
    list_display = ["ref", "merchant", "source", "debtor_key", "short_fingerprint", "entry"]
    list_filter = ["source"]
    list_select_related = ["merchant", "entry"]
    search_fields = ["ref", "fingerprint", "merchant__legal_name", "merchant__public_id"]
    show_full_result_count = False

    @admin.display(description="fingerprint")
    def short_fingerprint(self, receivable: Receivable) -> str:
        return receivable.fingerprint[:16] + "…"


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
