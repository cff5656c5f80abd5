"""Read-only admin for the books: services post, the admin only looks."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from config.admin_mixins import ReadOnlyAdminMixin
from financing.books.models import Account, BooksVerification, JournalEntry, Posting
from financing.books.selectors import account_balances, accounts_with_balance
from ledger.money import Money


@admin.register(Account)
class AccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Account]):
    # No currency column: the balance names it (and the filter picks it).
    list_display = ["code", "name", "kind", "balance", "merchant", "created_at"]
    change_list_template = "admin/compact_change_list.html"
    list_filter = ["kind", "currency"]
    search_fields = ["code", "name", "merchant__public_id", "merchant__legal_name"]
    list_select_related = ["merchant"]
    exclude = ["balance_minor"]
    readonly_fields = ["balance"]

    def get_queryset(self, request: HttpRequest) -> Any:
        return accounts_with_balance(super().get_queryset(request))

    @admin.display(description="balance (debit positive)", ordering="balance_total_minor")
    def balance(self, account: Account) -> str:
        """The whole balance: for the bank's accounts, their own part and every merchant's shard."""
        total = getattr(account, "balance_total_minor", None)
        if total is None:  # an account not read through get_queryset
            total = account_balances(account_ids=[account.pk])[account.pk]
        return Money.display(total, account.currency)


class PostingInline(ReadOnlyAdminMixin, admin.TabularInline[Posting, JournalEntry]):
    model = Posting
    fields = ["account", "amount"]
    readonly_fields = ["account", "amount"]
    extra = 0
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("account").order_by("id")

    @admin.display(description="amount (debit positive)")
    def amount(self, posting: Posting) -> str:
        return Money.display(posting.amount_minor, posting.currency)


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[JournalEntry]):
    list_display = ["key", "merchant", "memo", "posted_at"]
    list_select_related = ["merchant"]
    search_fields = ["key", "memo"]
    ordering = ["-id"]
    show_full_result_count = False
    inlines = [PostingInline]


@admin.register(BooksVerification)
class BooksVerificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[BooksVerification]):
    """Runs of ``verify_books`` (daily from beat): when the books were last proven sound."""

    list_display = [
        "started_at",
        "finished_at",
        "outcome",
        "accounts_checked",
        "entries_checked",
        "postings_checked",
        "problem",
    ]
    list_filter = ["outcome"]
