"""Read-only admin for the evidence: nothing here can change an entry or a projection."""

from __future__ import annotations

import base64
from typing import TypeVar

import orjson
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Max, Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from config.admin_mixins import ReadOnlyAdminMixin
from ledger.models import (
    Chain,
    Cosignature,
    Entry,
    Invoice,
    LedgerVerification,
    LogCheckpoint,
    Order,
    Payout,
    Shipment,
    Witness,
)
from ledger.money import Money
from ledger.tasks import ledger_verify

_M = TypeVar("_M", bound=Model)


@admin.register(Chain)
class ChainAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Chain]):
    list_display = ["merchant", "head_seq", "head_hash"]
    search_fields = ["merchant__public_id", "merchant__legal_name"]
    list_select_related = ["merchant"]


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Entry]):
    list_display = ["chain", "seq", "type", "external_ref", "source", "occurred_at", "short_hash"]
    change_list_template = "admin/compact_change_list.html"
    list_filter = ["type", "source"]
    search_fields = ["external_ref", "hash", "chain__merchant__public_id"]
    list_select_related = ["chain__merchant"]
    show_full_result_count = False
    exclude = ["body"]
    readonly_fields = ["pretty_body"]

    @admin.display(description="hash")
    def short_hash(self, entry: Entry) -> str:
        return entry.hash[:16] + "…"

    @admin.display(description="canonical body (what was hashed)")
    def pretty_body(self, entry: Entry) -> str:
        pretty = orjson.dumps(orjson.loads(bytes(entry.body)), option=orjson.OPT_INDENT_2)
        return format_html("<pre>{}</pre>", pretty.decode())


class ProjectionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[_M]):
    list_select_related = ["merchant"]
    change_list_template = "admin/compact_change_list.html"
    search_fields = ["ref", "merchant__public_id", "merchant__legal_name"]

    @admin.display(description="amount", ordering="amount_minor")
    def amount(self, row: Order | Invoice | Payout) -> str:
        return Money.display(row.amount_minor, row.currency)


@admin.register(Order)
class OrderAdmin(ProjectionAdmin[Order]):
    list_display = ["ref", "merchant", "amount", "status", "placed_at"]
    list_filter = ["status", "currency"]


@admin.register(Invoice)
class InvoiceAdmin(ProjectionAdmin[Invoice]):
    list_display = ["ref", "merchant", "amount", "credited", "due_date", "debtor_name", "status"]
    list_filter = ["status", "currency", "debtor_kind"]

    @admin.display(description="credited", ordering="credited_minor")
    def credited(self, invoice: Invoice) -> str:
        return Money.display(invoice.credited_minor, invoice.currency)


@admin.register(Shipment)
class ShipmentAdmin(ProjectionAdmin[Shipment]):
    list_display = ["ref", "merchant", "order_ref", "status", "dispatched_at", "delivered_at"]
    list_filter = ["status"]


@admin.register(Payout)
class PayoutAdmin(ProjectionAdmin[Payout]):
    list_display = ["ref", "merchant", "amount", "settled_on"]
    list_filter = ["currency"]


@admin.register(LedgerVerification)
class LedgerVerificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[LedgerVerification]):
    list_display = [
        "started_at",
        "finished_at",
        "outcome",
        "chains_checked",
        "entries_checked",
        "broken_merchant",
        "broken_seq",
        "problem",
    ]
    list_filter = ["outcome"]
    change_list_template = "admin/ledger/ledgerverification/change_list.html"

    def get_urls(self) -> list[URLPattern]:
        verify = path(
            "verify/",
            self.admin_site.admin_view(self.verify_now_view),
            name="ledger_ledgerverification_verify",
        )
        return [verify, *super().get_urls()]

    @method_decorator(require_POST)
    def verify_now_view(self, request: HttpRequest) -> HttpResponse:
        """Queue a verification of the whole ledger; the list shows its progress."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        transaction.on_commit(ledger_verify.delay)
        self.message_user(
            request,
            "Verification queued; refresh this page to follow its progress.",
            messages.SUCCESS,
        )
        return redirect("admin:ledger_ledgerverification_changelist")


# --- The global log: who witnessed what -----------------------------------------------------


class CosignatureInline(ReadOnlyAdminMixin, admin.TabularInline[Cosignature, LogCheckpoint]):
    model = Cosignature
    fields = ["witness", "cosigned_at", "received_at", "line"]
    readonly_fields = ["witness", "cosigned_at", "received_at", "line"]
    extra = 0


@admin.register(LogCheckpoint)
class LogCheckpointAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[LogCheckpoint]):
    list_display = ["tree_size", "signed_at", "root", "witnessed_by"]
    readonly_fields = ["tree_size", "signed_at", "root", "note_text"]
    exclude = ["root_hash", "note"]
    inlines = [CosignatureInline]
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[LogCheckpoint]:
        return super().get_queryset(request).prefetch_related("cosignatures__witness")

    @admin.display(description="root hash (base64)")
    def root(self, checkpoint: LogCheckpoint) -> str:
        return base64.b64encode(bytes(checkpoint.root_hash)).decode()

    @admin.display(description="cosigned by")
    def witnessed_by(self, checkpoint: LogCheckpoint) -> str:
        return ", ".join(c.witness.name for c in checkpoint.cosignatures.all()) or "—"

    @admin.display(description="signed note")
    def note_text(self, checkpoint: LogCheckpoint) -> str:
        return format_html("<pre>{}</pre>", checkpoint.note)


@admin.register(Witness)
class WitnessAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Witness]):
    list_display = ["name", "party", "registered_at", "last_cosigned", "cosignatures_count"]
    readonly_fields = ["name", "party", "vkey", "registered_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Witness]:
        return (
            super()
            .get_queryset(request)
            .annotate(last=Max("cosignatures__checkpoint_id"), count=Count("cosignatures"))
        )

    @admin.display(description="last tree size cosigned")
    def last_cosigned(self, witness: Witness) -> int | None:
        return getattr(witness, "last", None)

    @admin.display(description="cosignatures")
    def cosignatures_count(self, witness: Witness) -> int:
        return int(getattr(witness, "count", 0))
