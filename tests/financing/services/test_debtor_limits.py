"""Bank-wide debtor limits (issue 8 item 5): one limit per debtor across all merchants, set
through four-eyes, checked at quote, approval and authorization; business buyers without a tax
id keyed by their folded name and country, never by a case-folded string alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from financing import locks
from financing.exceptions import AdvanceRefused, ApprovalVoid
from financing.models import Advance, Assignment, Receivable
from financing.services import requests
from financing.services.decisions import advance_approve, advance_authorize
from financing.services.requests import advance_quote, advance_request
from merchants.models import Debtor, Marketplace, Merchant
from tests.financing.conftest import Trade, debtor_limit_set

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

ACME_DE = {"kind": "business", "name": "ACME GmbH", "country": "DE"}


def _fundable(trade: Trade, ref: str, debtor: dict[str, str], amount: str = "1000.00") -> str:
    trade.order(f"ORD-{ref}", amount)
    trade.invoice(ref, f"ORD-{ref}", amount, debtor=debtor)
    trade.delivered(f"ORD-{ref}")
    return ref


def test_a_buyer_without_a_tax_id_is_one_debtor_however_its_name_is_spelled(
    trade: Trade, open_facility: Callable[..., Any], now: datetime
) -> None:
    open_facility(trade.merchant)
    spellings = ["ACME GmbH", "Acme G.m.b.H.", "ａｃｍｅ  gmbh", "AСME GmbH"]
    refs = [
        _fundable(trade, f"INV-{i}", {**ACME_DE, "name": name}) for i, name in enumerate(spellings)
    ]
    elsewhere = _fundable(trade, "INV-FR", {**ACME_DE, "country": "FR"})

    keys = dict(Receivable.objects.values_list("ref", "debtor_key"))
    advance_request(merchant=trade.merchant, refs=refs, request_key="k", now=now)

    assert {keys[ref] for ref in refs} == {"business-name:DE:acmegmbh"}
    assert keys[elsewhere] == "business-name:FR:acmegmbh"
    assert Debtor.objects.filter(kind="business").count() == 1  # one row for the four
    assert set(Assignment.objects.values_list("debtor_key", flat=True)) == {
        "business-name:DE:acmegmbh"
    }


def test_the_bank_limit_spans_merchants_and_says_the_room_left(
    trade: Trade,
    trade_for: Callable[[Merchant], Trade],
    make_merchant: Callable[..., Merchant],
    open_facility: Callable[..., Any],
    marketplace: Marketplace,
    officer: User,
    now: datetime,
) -> None:
    other = _verified(make_merchant)
    for merchant in (trade.merchant, other):
        open_facility(merchant)
    debtor_limit_set(f"marketplace:{marketplace.code}", 100_000, now)  # 1,000.00 bank-wide
    first = advance_request(
        merchant=trade.merchant, refs=trade.fundable(1), request_key="a", now=now
    )
    advance_approve(advance=first, officer=officer, now=now)  # 800.00 against the marketplace

    with pytest.raises(AdvanceRefused) as refused:
        advance_quote(merchant=other, refs=trade_for(other).fundable(1), today=now.date())

    [pairs] = refused.value.reasons.values()
    [(code, message)] = pairs
    assert code == "BANK_DEBTOR_LIMIT"
    assert "leaves 200.00 EUR" in message


def test_approval_and_authorization_recheck_the_bank_limit(
    trade: Trade,
    trade_for: Callable[[Merchant], Trade],
    make_merchant: Callable[..., Merchant],
    open_facility: Callable[..., Any],
    marketplace: Marketplace,
    officer: User,
    senior: User,
    now: datetime,
) -> None:
    other = _verified(make_merchant)
    open_facility(trade.merchant, checker_threshold_minor=10_000)  # every advance needs a checker
    open_facility(other)
    big = advance_request(merchant=trade.merchant, refs=trade.fundable(1), request_key="a", now=now)
    approved = advance_approve(advance=big, officer=officer, now=now)
    small = advance_request(
        merchant=other, refs=trade_for(other).fundable(1), request_key="b", now=now
    )

    debtor_limit_set(f"marketplace:{marketplace.code}", 100_000, now)  # 800 approved: 200 left
    with pytest.raises(AdvanceRefused) as refused:
        advance_approve(advance=small, officer=officer, now=now)
    assert "BANK_DEBTOR_LIMIT" in str(refused.value.reasons)
    assert Advance.objects.get(pk=small.pk).status == Advance.Status.REQUESTED

    debtor_limit_set(f"marketplace:{marketplace.code}", 50_000, now)  # now below what is approved
    with pytest.raises(ApprovalVoid, match="BANK_DEBTOR_LIMIT"):
        advance_authorize(advance=approved, officer=senior, now=now)
    assert Advance.objects.get(pk=approved.pk).status == Advance.Status.REQUESTED


def test_a_decision_judges_by_the_limits_it_read_with_their_lock(
    trade: Trade,
    open_facility: Callable[..., Any],
    marketplace: Marketplace,
    officer: User,
    now: datetime,
) -> None:
    # Rows held locked cannot change: the re-check takes the limits the lock read.
    open_facility(trade.merchant)
    fits = advance_request(
        merchant=trade.merchant, refs=trade.fundable(1), request_key="a", now=now
    )
    beyond = advance_request(
        merchant=trade.merchant, refs=trade.fundable(1), request_key="b", now=now
    )
    debtor_limit_set(f"marketplace:{marketplace.code}", 100_000, now)  # room for one 800.00

    with CaptureQueriesContext(connection) as queries:
        advance_approve(advance=fits, officer=officer, now=now)
    with pytest.raises(AdvanceRefused) as refused:
        advance_approve(advance=beyond, officer=officer, now=now)

    limit_reads = [
        q["sql"] for q in queries.captured_queries if "financing_debtorlimit" in q["sql"]
    ]
    assert len(limit_reads) == 1 and "FOR UPDATE" in limit_reads[0]
    assert Advance.objects.get(pk=fits.pk).status == Advance.Status.DISBURSED
    assert "leaves 200.00 EUR" in str(refused.value.reasons)


# --- Two merchants' approvals at once against one debtor ------------------------------------------


def _verified(make_merchant: Callable[..., Merchant]) -> Merchant:
    merchant = make_merchant()
    Merchant.objects.filter(pk=merchant.pk).update(kyc_status=Merchant.KycStatus.VERIFIED)
    return Merchant.objects.get(pk=merchant.pk)


def _two_requests(
    make_merchant: Callable[..., Merchant],
    trade_for: Callable[[Merchant], Trade],
    open_facility: Callable[..., Any],
    marketplace: Marketplace,
    now: datetime,
) -> list[Advance]:
    advances = []
    for _ in range(2):
        merchant = _verified(make_merchant)
        open_facility(merchant)
        refs = trade_for(merchant).fundable(1)
        advances.append(advance_request(merchant=merchant, refs=refs, request_key="k", now=now))
    debtor_limit_set(f"marketplace:{marketplace.code}", 100_000, now)  # room for one 800.00
    return advances


def _approve_together(advances: list[Advance], officer: User, now: datetime) -> list[Any]:
    results: list[Any] = [None, None]
    start = threading.Barrier(2)

    def run(i: int) -> None:
        try:
            start.wait(timeout=60)
            results[i] = advance_approve(advance=advances[i], officer=officer, now=now)
        except BaseException as exc:
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread still runs: a deadlock?"
    return results


def _slow_requote(monkeypatch: pytest.MonkeyPatch, barrier: threading.Barrier | None) -> None:
    """Widen the window between an approval's re-check and its commit; with ``barrier``, hold
    each approval after its re-check until both have checked (only possible without the lock)."""
    real = requests._quote

    def quote(merchant: Merchant, refs: Any, today: Any, holder: Any, invoices: Any = None) -> Any:
        result = real(merchant, refs, today, holder, invoices)
        if holder is not None:
            time.sleep(0.05)
            if barrier is not None:
                barrier.wait(timeout=30)
        return result

    monkeypatch.setattr(requests, "_quote", quote)


@pytest.mark.django_db(transaction=True)
def test_two_merchants_approvals_never_jointly_pass_the_bank_limit(
    make_merchant: Callable[..., Merchant],
    trade_for: Callable[[Merchant], Trade],
    open_facility: Callable[..., Any],
    marketplace: Marketplace,
    officer: User,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    advances = _two_requests(make_merchant, trade_for, open_facility, marketplace, now)
    _slow_requote(monkeypatch, barrier=None)

    results = _approve_together(advances, officer, now)

    granted = [r for r in results if isinstance(r, Advance)]
    refused = [r for r in results if isinstance(r, AdvanceRefused)]
    assert (len(granted), len(refused)) == (1, 1), results
    assert "BANK_DEBTOR_LIMIT" in str(refused[0].reasons)
    assert Advance.objects.filter(status="disbursed").count() == 1


@pytest.mark.django_db(transaction=True)
def test_negative_control_without_the_limit_lock_both_pass(
    make_merchant: Callable[..., Merchant],
    trade_for: Callable[[Merchant], Trade],
    open_facility: Callable[..., Any],
    marketplace: Marketplace,
    officer: User,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    advances = _two_requests(make_merchant, trade_for, open_facility, marketplace, now)
    # The limits read without their locks (and not kept: the re-check reads them again).
    monkeypatch.setattr(locks, "_limits_locked_later", lambda advance: lambda: None)
    _slow_requote(monkeypatch, barrier=threading.Barrier(2))

    results = _approve_together(advances, officer, now)

    # Each re-check ran blind to the other: 1,600.00 against a 1,000.00 limit.
    assert all(isinstance(r, Advance) for r in results), results
    assert Advance.objects.filter(status="disbursed").count() == 2
