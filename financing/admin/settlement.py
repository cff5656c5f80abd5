"""Settlement as officers watch it: recourse merchants owe, the work outbox with its lag, and
dead letters an officer re-runs (through ``dead_letter_rerun``) once the cause is fixed.

All read-only: settlement writes these rows; the one act here is the re-run.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from config.admin_mixins import ReadOnlyAdminMixin
from financing.admin.formatting import refusal
from financing.admin.writes import officer_of
from financing.exceptions import FinancingError
from financing.models import DeadLetter, Recourse, SettlementWork
from financing.services.dead_letters import RERUN_PERMISSION, dead_letter_rerun
from ledger.money import Money


def lag_display(lag: timedelta | None) -> str:
    """A lag to the second, as a person reads it: "4 s", "3 min 5 s", "2 h 10 min"."""
    if lag is None:
        return "—"
    seconds = max(0, int(lag.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


@admin.register(Recourse)
class RecourseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Recourse]):
    """Every amount a merchant was charged on recourse; what is still open is on its file."""

    list_display = ["raised_at", "merchant", "invoice", "advance", "reason", "amount", "source"]
    change_list_template = "admin/compact_change_list.html"
    list_filter = ["reason", "currency", ("merchant", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["merchant", "assignment__advance", "source_entry"]
    search_fields = ["merchant__legal_name", "assignment__invoice_ref", "assignment__advance__ref"]

    @admin.display(description="invoice", ordering="assignment__invoice_ref")
    def invoice(self, recourse: Recourse) -> str:
        return recourse.assignment.invoice_ref

    @admin.display(description="advance")
    def advance(self, recourse: Recourse) -> str:
        return recourse.assignment.advance.ref

    @admin.display(description="amount", ordering="amount_minor")
    def amount(self, recourse: Recourse) -> str:
        return Money.display(recourse.amount_minor, recourse.currency)

    @admin.display(description="raised by")
    def source(self, recourse: Recourse) -> str:
        return f"{recourse.source_entry.type} {recourse.source_entry.external_ref}"


@admin.register(SettlementWork)
class SettlementWorkAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[SettlementWork]):
    """The outbox: each payout or dilution a worker applies, and how long it took."""

    list_display = [
        "entry_ref",
        "merchant",
        "kind",
        "status",
        "attempts",
        "recorded",
        "done_at",
        "lag",
    ]
    list_filter = ["status", "kind"]
    list_select_related = ["entry", "merchant"]
    change_list_template = "admin/compact_change_list.html"
    search_fields = ["entry__external_ref", "merchant__legal_name"]
    ordering = ["-created_at", "-id"]

    @admin.display(description="entry", ordering="entry__external_ref")
    def entry_ref(self, work: SettlementWork) -> str:
        return f"{work.entry.type} {work.entry.external_ref}"

    @admin.display(description="recorded", ordering="entry__recorded_at")
    def recorded(self, work: SettlementWork) -> str:
        return f"{work.entry.recorded_at:%Y-%m-%d %H:%M:%S}"

    @admin.display(description="lag")
    def lag(self, work: SettlementWork) -> str:
        """Entry recorded → settled; pending or dead: so far."""
        if work.done_at is not None:
            return lag_display(work.done_at - work.entry.recorded_at)
        return f"{lag_display(timezone.now() - work.entry.recorded_at)} so far"


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[DeadLetter]):
    """Tasks that kept failing, newest first; an officer re-runs one once its cause is fixed."""

    list_display = ["failed_at", "task_name", "work", "attempts", "error_short", "rerun"]
    list_filter = [("rerun_at", admin.EmptyFieldListFilter), "task_name"]
    list_select_related = ["work__entry", "rerun_by"]
    search_fields = ["task_name", "error"]
    actions = ["rerun_action"]

    @admin.display(description="error")
    def error_short(self, letter: DeadLetter) -> str:
        return letter.error if len(letter.error) <= 160 else letter.error[:159] + "…"

    @admin.display(description="re-run")
    def rerun(self, letter: DeadLetter) -> str:
        if letter.rerun_at is None or letter.rerun_by is None:
            return "—"
        return f"{letter.rerun_at:%Y-%m-%d %H:%M} by {letter.rerun_by.get_username()}"

    def has_rerun_permission(self, request: HttpRequest) -> bool:
        return officer_of(request).has_perm(RERUN_PERMISSION)

    @admin.action(description="Re-run the selected tasks", permissions=["rerun"])
    def rerun_action(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        officer = officer_of(request)
        done = 0
        for letter in queryset.order_by("pk"):
            try:
                dead_letter_rerun(dead_letter=letter, officer=officer, now=timezone.now())
            except FinancingError as exc:
                self.message_user(request, f"{letter}: {refusal(exc)}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"{done} task(s) sent again.", messages.SUCCESS)
