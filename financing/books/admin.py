"""Read-only admin for the books: services post, the admin only looks."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from financing.books.models import Account, JournalEntry, Posting
from ledger.money import MoneyError, format_minor_units


def _money(minor: int, currency: str) -> str:
    try:
        return f"{format_minor_units(minor, currency)} {currency}"
    except MoneyError:  # a currency the money module does not know: show what is stored
        return f"{minor} (minor units) {currency}"


class _ReadOnly:
    """No add, change or delete: balances and entries move only through journal_post."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Account)
class AccountAdmin(_ReadOnly, admin.ModelAdmin[Account]):
    list_display = ["code", "name", "kind", "currency", "balance", "merchant", "created_at"]
    list_filter = ["kind", "currency"]
    search_fields = ["code", "name", "merchant__public_id", "merchant__legal_name"]
    list_select_related = ["merchant"]
    exclude = ["balance_minor"]
    readonly_fields = ["balance"]

    @admin.display(description="balance (debit positive)", ordering="balance_minor")
    def balance(self, account: Account) -> str:
        return _money(account.balance_minor, account.currency)


class PostingInline(_ReadOnly, admin.TabularInline[Posting, JournalEntry]):
    model = Posting
    fields = ["account", "amount"]
    readonly_fields = ["account", "amount"]
    extra = 0
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("account").order_by("id")

    @admin.display(description="amount (debit positive)")
    def amount(self, posting: Posting) -> str:
        return _money(posting.amount_minor, posting.currency)


@admin.register(JournalEntry)
class JournalEntryAdmin(_ReadOnly, admin.ModelAdmin[JournalEntry]):
    list_display = ["key", "memo", "posted_at"]
    search_fields = ["key", "memo"]
    ordering = ["-id"]
    show_full_result_count = False
    inlines = [PostingInline]
