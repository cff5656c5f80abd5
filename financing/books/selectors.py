"""Reads of the books: balances, wherever their parts are kept."""

from __future__ import annotations

from django.db.models import BigIntegerField, F, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from financing.books.models import Account, AccountShard


def accounts_with_balance(accounts: QuerySet[Account] | None = None) -> QuerySet[Account]:
    """Return ``accounts`` (all by default) annotated with ``balance_total_minor``: the account's
    own balance plus its merchants' shards (only the bank's accounts have any), debit positive.

    One query, however many accounts: the shards are summed in a subquery per account.
    """
    shards = (
        AccountShard.objects.filter(account=OuterRef("pk"))
        .order_by()
        .values("account")
        .annotate(total=Sum("balance_minor"))
        .values("total")
    )
    queryset = Account.objects.all() if accounts is None else accounts
    return queryset.annotate(
        balance_total_minor=F("balance_minor")
        + Coalesce(Subquery(shards), 0, output_field=BigIntegerField())
    )


def account_balances(*, account_ids: list[int]) -> dict[int, int]:
    """Return the balance, debit positive, of each account of ``account_ids`` that exists."""
    balances = dict(Account.objects.filter(pk__in=account_ids).values_list("pk", "balance_minor"))
    shards = AccountShard.objects.filter(account_id__in=account_ids).values_list(
        "account_id", "balance_minor"
    )
    for account_id, part in shards:
        balances[account_id] += part
    return balances
