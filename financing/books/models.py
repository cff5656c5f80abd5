"""Accounts, journal entries and postings.

Every movement of money is a journal entry whose postings sum to zero per currency, caused by
at most one merchant (``JournalEntry.merchant``, copied onto its postings). Balances are running
sums of postings, debit positive, kept where that merchant's transaction alone writes them:

* a merchant's own account keeps its balance in ``Account.balance_minor``;
* one of the bank's own accounts (disbursement clearing, bank cash, fee income...) keeps the part
  moved by each merchant's entries in that merchant's ``AccountShard``, and the part moved by
  bank-level entries (no merchant: bank statements clearing many merchants' payments) in
  ``Account.balance_minor``. Its balance is the sum of both (``selectors.account_balances``).

So two merchants' settlements never write, or wait for, the same row; that is also what lets
the books be distributed by merchant (README, "Scaling past one machine").

The database holds the rules that matter (migrations 0002 and 0004): a deferred constraint
trigger refuses, at commit, an entry that does not balance or has fewer than two postings;
entries and postings are append-only; a composite foreign key ties each posting's currency to
its account's; and a trigger ties each posting's merchant to its entry's and to its account's
owner.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from merchants.models import Merchant

_CURRENCY = r"^[A-Z]{3}$"


class Account(models.Model):
    """One account of the books, in one currency, optionally a merchant's sub-ledger."""

    class Kind(models.TextChoices):
        ASSET = "asset", "Asset"
        LIABILITY = "liability", "Liability"
        INCOME = "income", "Income"
        EXPENSE = "expense", "Expense"
        EQUITY = "equity", "Equity"

    code = models.CharField(
        max_length=200, unique=True, help_text='Stable code, e.g. "advances_receivable:mer_…:EUR".'
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    currency = models.CharField(max_length=3, help_text="ISO 4217, e.g. EUR.")
    # Debit positive, credit negative: assets and expenses normally show positive balances,
    # liabilities, income and equity negative. Kept current by journal_post under a row lock.
    balance_minor = models.BigIntegerField(default=0)
    merchant = models.ForeignKey(
        Merchant,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="book_accounts",
        help_text="The merchant this account belongs to; empty for the bank's own accounts.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["asset", "liability", "income", "expense", "equity"]),
                name="account_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=_CURRENCY), name="account_currency_iso"
            ),
            # The target of the composite foreign key (account_id, currency) from books_posting,
            # which keeps a posting in its account's currency (migration 0002).
            models.UniqueConstraint(fields=["id", "currency"], name="account_id_currency_unique"),
        ]

    def __str__(self) -> str:
        return self.code


class JournalEntry(models.Model):
    """One balanced movement of money: two or more postings summing to zero per currency.

    Append-only in the database (UPDATE, DELETE and TRUNCATE refused by triggers).
    """

    key = models.CharField(max_length=255, help_text="Idempotency key: one entry per key, ever.")
    # No index: nothing looks entries up by merchant on the hot path, and every index costs
    # every posting. Empty only for bank-level entries that no one merchant caused.
    merchant = models.ForeignKey(
        Merchant,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        help_text="The merchant whose business this entry records; empty for bank-level entries.",
    )
    memo = models.CharField(max_length=500)
    posted_at = models.DateTimeField()
    # SHA-256 of the legs (account code and amount, in a canonical order), so that a repeat of
    # the key with the same legs returns this entry and one with other legs is refused.
    fingerprint = models.CharField(max_length=64)

    class Meta:
        verbose_name_plural = "journal entries"
        constraints = [
            models.UniqueConstraint(fields=["key"], name="journalentry_key_unique"),
            models.CheckConstraint(
                condition=Q(fingerprint__regex=r"^[0-9a-f]{64}$"),
                name="journalentry_fingerprint_hex",
            ),
        ]

    def __str__(self) -> str:
        return self.key


class Posting(models.Model):
    """One leg of a journal entry: debit positive, credit negative, never zero.

    ``currency`` is a copy of the account's, enforced by a composite foreign key on PostgreSQL,
    so that the balance trigger and verification can sum per currency without a join.
    """

    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="postings")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    # A copy of the entry's (a trigger keeps them equal, migration 0004), so that a merchant's
    # postings, and the shard sums verification checks, need no join.
    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(amount_minor=0), name="posting_amount_nonzero"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.amount_minor:+d} {self.currency}"


class AccountShard(models.Model):
    """The part of one of the bank's own accounts that one merchant's entries moved.

    Without it every merchant's settlement would update, under a row lock, the same few rows
    (disbursement clearing, collections clearing, fee income): one hot row for the whole bank.
    journal_post upserts the shard of the entry's merchant instead. Merchants' own accounts have
    no shards (verification says so if one appears).
    """

    # No indexes of their own: the unique key leads with the account and serves every look-up.
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="shards", db_index=False
    )
    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    balance_minor = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            # The conflict target of journal_post's upsert; it leads with the account, and the
            # merchant in it is what a distributed database needs in every unique key.
            models.UniqueConstraint(fields=["account", "merchant"], name="accountshard_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} of merchant {self.merchant_id}: {self.balance_minor:+d}"


class BooksVerification(models.Model):
    """One run of ``verify_books``, so officers can see when the books were last proven sound."""

    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        BALANCED = "balanced", "Balanced"
        BROKEN = "broken", "Broken"

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    accounts_checked = models.BigIntegerField(default=0)
    entries_checked = models.BigIntegerField(default=0)
    postings_checked = models.BigIntegerField(default=0)
    problem = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        get_latest_by = "started_at"
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=["running", "balanced", "broken"]),
                name="booksverification_outcome_valid",
            ),
            models.CheckConstraint(
                condition=Q(outcome="running") | Q(finished_at__isnull=False),
                name="booksverification_finished_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"books verification {self.started_at:%Y-%m-%d %H:%M} {self.outcome}"
