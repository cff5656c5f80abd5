"""Helpers for the settlement tests: payouts written as a marketplace sends them, work applied
as a worker would, and the books and chain read back."""

from __future__ import annotations

from datetime import date, datetime
from itertools import count

from django.contrib.auth.models import User

from financing.books.models import Account
from financing.books.selectors import account_balances
from financing.books.verification import books_verify
from financing.models import Advance, Assignment, SettlementWork
from financing.services.decisions import advance_approve
from financing.services.requests import advance_request
from financing.services.settlement import settlement_work_run
from ledger.verification import ledger_verify
from tests.financing.conftest import Trade

_payouts = count(1)


def disbursed(trade: Trade, refs: list[str], officer: User, now: datetime) -> Advance:
    key = f"adv-{next(_payouts)}"
    advance = advance_request(merchant=trade.merchant, refs=refs, request_key=key, now=now)
    advance = advance_approve(advance=advance, officer=officer, now=now)
    assert advance.status == Advance.Status.DISBURSED
    return advance


def payout(
    trade: Trade, lines: list[tuple[str, str]], amount: str | None = None, ref: str | None = None
) -> str:
    """Append a ``payout.settled`` of ``lines`` (invoice ref, amount); its total by default."""
    cents = sum(int(a.replace(".", "")) for _, a in lines)
    total = amount or f"{cents // 100}.{cents % 100:02d}"
    ref = ref or f"PO-{next(_payouts)}"
    trade.append(
        "payout.settled",
        ref,
        {
            "currency": "EUR",
            "amount": total,
            "settled_on": date(2026, 11, 1).isoformat(),
            "lines": [{"invoice_ref": r, "amount": a} for r, a in lines],
        },
        days_ago=0,
    )
    return ref


def settle_pending(now: datetime) -> int:
    """Apply every pending piece of work, as a worker would; return how many applied."""
    pending = SettlementWork.objects.filter(status=SettlementWork.Status.PENDING).order_by("pk")
    ids = list(pending.values_list("pk", flat=True))
    return sum(settlement_work_run(work_id=pk, now=now) for pk in ids)


def balance(code_prefix: str, merchant_public_id: str | None = None) -> int:
    """The balance (debit positive) of the EUR account ``code_prefix`` (a merchant's if named)."""
    code = f"{code_prefix}:{merchant_public_id}:EUR" if merchant_public_id else f"{code_prefix}:EUR"
    account = Account.objects.filter(code=code).first()
    return account_balances(account_ids=[account.pk])[account.pk] if account else 0


def assignment(ref: str) -> Assignment:
    return Assignment.objects.select_related("advance").get(invoice_ref=ref)


def books_and_chain_sound() -> None:
    """``verify_books`` and ``verify_ledger`` both pass."""
    report = books_verify()
    assert report.intact, report.first_problem
    result = ledger_verify()
    assert result.intact, result
