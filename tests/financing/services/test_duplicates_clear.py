"""A senior officer clears a false DUPLICATE_INVOICE with a written reason (issue 8 item 3, last
sentence), under four-eyes (item 7): proposed by one officer, confirmed by a different senior;
audited, and visible on the receivable."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.urls import reverse

from financing.eligibility import verdicts
from financing.exceptions import MakerCheckerViolation, NotPermitted, WrongState
from financing.models import DuplicateClearance, Receivable, RiskChange
from financing.services.duplicates import duplicate_clear_propose
from financing.services.proposals import change_confirm
from merchants.models import MarketplaceMerchant
from merchants.services import marketplace_create
from tests.financing.conftest import TODAY, Trade

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def twin(trade: Trade, facility: object) -> Receivable:
    """INV-1 through the merchant's marketplace, then "inv 1" through a second one."""
    trade.order("ORD-1")
    trade.invoice("INV-1", "ORD-1")
    trade.delivered("ORD-1")
    other = marketplace_create(code="second-mkt", name="Second Marketplace")
    MarketplaceMerchant.objects.create(marketplace=other, merchant=trade.merchant, seller_id="s2")
    second = Trade(merchant=trade.merchant, source=other.code, now=trade.now)
    second.order("ORD-2")
    second.invoice("inv 1", "ORD-2")
    second.delivered("ORD-2")
    return Receivable.objects.get(merchant=trade.merchant, ref="inv 1")


def _codes(receivable: Receivable) -> list[str]:
    [verdict] = verdicts(receivable.merchant, TODAY, [receivable.ref])
    return verdict.codes


def test_a_false_duplicate_is_cleared_by_two_officers_and_shows_on_the_receivable(
    twin: Receivable,
    officer: User,
    senior: User,
    auditor: User,
    now: datetime,
    officer_client_factory: object,
) -> None:
    assert _codes(twin) == ["DUPLICATE_INVOICE"]
    with pytest.raises(NotPermitted):
        duplicate_clear_propose(receivable=twin, officer=auditor, reason="Looks fine", now=now)
    with pytest.raises(WrongState, match="Say why"):
        duplicate_clear_propose(receivable=twin, officer=officer, reason=" ", now=now)
    proposal = duplicate_clear_propose(
        receivable=twin, officer=officer, reason="Different goods, confirmed by phone", now=now
    )
    assert _codes(twin) == ["DUPLICATE_INVOICE"]  # nothing changes before the senior confirms
    with pytest.raises(NotPermitted):
        change_confirm(change=proposal, officer=officer, now=now)

    change_confirm(change=proposal, officer=senior, now=now)

    assert _codes(twin) == []
    clearance = DuplicateClearance.objects.get()
    assert (clearance.invoice_ref, clearance.entry_id) == ("inv 1", twin.entry_id)
    page = (
        officer_client_factory(auditor)
        .get(  # type: ignore[operator]
            reverse("admin:financing_receivable_change", args=[twin.pk])
        )
        .content.decode()
    )
    assert "Different goods, confirmed by phone" in page
    assert f"confirmed by {senior.get_username()}" in page
    with pytest.raises(IntegrityError), transaction.atomic():
        DuplicateClearance.objects.create(
            merchant=twin.merchant, invoice_ref="inv 1", entry=twin.entry,
            proposal=proposal, cleared_at=now,
        )  # fmt: skip


def test_only_a_flagged_receivable_can_be_cleared(
    twin: Receivable, officer: User, now: datetime
) -> None:
    first = Receivable.objects.get(merchant=twin.merchant, ref="INV-1")

    with pytest.raises(WrongState, match="not flagged"):
        duplicate_clear_propose(receivable=first, officer=officer, reason="Sure", now=now)

    assert not RiskChange.objects.filter(kind="duplicate_clear").exists()


def test_the_proposer_cannot_confirm_a_clearance(
    twin: Receivable, senior: User, now: datetime
) -> None:
    proposal = duplicate_clear_propose(receivable=twin, officer=senior, reason="Mine", now=now)

    with pytest.raises(MakerCheckerViolation):
        change_confirm(change=proposal, officer=senior, now=now)

    assert _codes(twin) == ["DUPLICATE_INVOICE"]


@pytest.fixture
def unflagged(trade: Trade) -> Receivable:
    """INV-3, with no twin: nothing to clear."""
    trade.order("ORD-3")
    trade.invoice("INV-3", "ORD-3")
    return Receivable.objects.get(merchant=trade.merchant, ref="INV-3")


def test_the_receivables_list_offers_clearing_only_where_a_duplicate_is_flagged(
    twin: Receivable, unflagged: Receivable, officer: User, officer_client_factory: object
) -> None:
    page = (
        officer_client_factory(officer)  # type: ignore[operator]
        .get(reverse("admin:financing_receivable_changelist"))
        .content.decode()
    )

    rows = {
        ref: row
        for row in re.findall(r"<tr>(.*?)</tr>", page, re.S)
        if (ref := _row_ref(row)) is not None
    }
    assert _codes(twin) == ["DUPLICATE_INVOICE"]
    assert "Clear a false duplicate" in rows["inv 1"]
    assert "Clear a false duplicate" not in rows[unflagged.ref]


def _row_ref(row: str) -> str | None:
    found = re.search(r'<th class="field-ref"><a [^>]*>([^<]+)</a>', row)
    return found.group(1) if found else None


def test_a_receivable_page_offers_clearing_only_when_it_is_flagged(
    twin: Receivable, unflagged: Receivable, officer: User, officer_client_factory: object
) -> None:
    client = officer_client_factory(officer)  # type: ignore[operator]

    def page(receivable: Receivable) -> str:
        url = reverse("admin:financing_receivable_change", args=[receivable.pk])
        return str(client.get(url).content.decode())

    assert "Clear a false duplicate" in page(twin)
    assert "Clear a false duplicate" not in page(unflagged)
