"""Eligibility: one reason code per failing rule, each produced from real evidence and state.

Every row writes trade evidence through the ledger (the ``Trade`` builder) or sets up the real
state a rule reads (facility terms, merchant standing, a blacklisting, another advance), then
checks that the verdict carries exactly the expected codes: a rule that fires where it should
not fails the row as surely as one that stays silent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth.models import User

from financing.eligibility import Code, Verdict, verdicts
from financing.exceptions import AdvanceRefused, FacilityInvalid
from financing.models import Facility
from financing.services.blacklist import blacklist_add
from financing.services.requests import MAX_RECEIVABLES_PER_ADVANCE, advance_quote, advance_request
from merchants.models import MarketplaceMerchant, Merchant
from merchants.services import marketplace_create
from tests.financing.conftest import TODAY, Trade, db_counts, debtor_limit_set
from tests.financing.integrity_helpers import assignment_flip_released
from tests.financing.settlement_helpers import disbursed

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

BUSINESS_DEBTOR = {"kind": "business", "name": "Big Buyer GmbH", "tax_id": "DE999999999"}


@dataclass
class Scene:
    """What a row builds its case from: the merchant's trade, facilities, an officer, the time."""

    trade: Trade
    open_facility: Callable[..., Facility]
    officer: User
    now: datetime

    @property
    def merchant(self) -> Merchant:
        return self.trade.merchant

    def facility(self, **terms: Any) -> Facility:
        return self.open_facility(self.merchant, **terms)

    def evidence(
        self, n: str, *, order: str = "1000.00", invoice: str = "1000.00", **invoice_kw: Any
    ) -> str:
        """Order, invoice and delivery for invoice ``INV-<n>`` of order ``ORD-<n>``."""
        self.trade.order(f"ORD-{n}", order, currency=invoice_kw.pop("order_currency", "EUR"))
        self.trade.invoice(f"INV-{n}", f"ORD-{n}", invoice, **invoice_kw)
        self.trade.delivered(f"ORD-{n}")
        return f"INV-{n}"

    def request(self, ref: str, key: str) -> None:
        advance_request(merchant=self.merchant, refs=[ref], request_key=key, now=self.now)


def judge(merchant: Merchant, ref: str) -> Verdict:
    fresh = Merchant.objects.get(pk=merchant.pk)  # the standing as stored, not as cached
    [verdict] = verdicts(fresh, TODAY, [ref])
    return verdict


# One builder per reason code: each sets up the case and returns the invoice ref to judge.


def _all_good(s: Scene) -> str:
    s.facility()
    return s.evidence("1")


def _no_order(s: Scene) -> str:
    s.facility()
    s.trade.invoice("INV-1", "ORD-GHOST")
    s.trade.delivered("ORD-GHOST")  # a delivery without an order: only the order is missing
    return "INV-1"


def _order_cancelled(s: Scene) -> str:
    s.facility()
    ref = s.evidence("1")
    s.trade.cancelled("ORD-1")
    return ref


def _currency_mismatch(s: Scene) -> str:
    s.facility()
    return s.evidence("1", order_currency="USD")


def _amount_exceeds_order(s: Scene) -> str:
    s.facility()
    return s.evidence("1", order="1000.00", invoice="1000.01")


def _no_delivery(s: Scene) -> str:
    s.facility()
    s.trade.order("ORD-1")
    s.trade.invoice("INV-1", "ORD-1")
    # Dispatched is not delivered.
    s.trade.append("shipment.dispatched", "SHP-1", {"order_ref": "ORD-1"})
    return "INV-1"


def _no_order_link(s: Scene) -> str:
    s.facility()
    s.trade.invoice("INV-1", None)  # evidence, but of no order yet
    return "INV-1"


def _order_over_invoiced(s: Scene) -> str:
    s.facility()
    s.evidence("1")
    s.trade.invoice("INV-2", "ORD-1")  # a second 1,000.00 invoice for the 1,000.00 order
    return "INV-2"


def _not_all_delivered(s: Scene) -> str:
    s.facility()
    ref = s.evidence("1")
    s.trade.dispatched("ORD-1", "SHP-2")  # a second shipment of the order, still in transit
    return ref


def _assigned_elsewhere(s: Scene) -> str:
    s.facility()
    return s.evidence("1", payee={"name": "Factor AB"})


def _returned(s: Scene) -> str:
    s.facility()
    ref = s.evidence("1")
    s.trade.returned("ORD-1")
    return ref


def _credited(s: Scene) -> str:
    s.facility()
    ref = s.evidence("1")
    s.trade.credited(ref, "10.00")
    return ref


def _paid(s: Scene) -> str:
    s.facility()
    ref = s.evidence("1")
    s.trade.append(
        "payout.settled",
        "PO-1",
        {
            "currency": "EUR",
            "amount": "100.00",
            "settled_on": "2026-10-30",
            "lines": [{"invoice_ref": ref, "amount": "100.00"}],
        },
        days_ago=2,
    )
    return ref


def _no_facility(s: Scene) -> str:
    s.facility(currency="USD")  # a credit line, but not in the invoice's currency
    return s.evidence("1")


def _past_due(s: Scene) -> str:
    s.facility()
    return s.evidence("1", due_in_days=-1)


def _too_close_to_due(s: Scene) -> str:
    s.facility(min_days_to_due=7)
    return s.evidence("1", due_in_days=6)


def _tenor_too_long(s: Scene) -> str:
    s.facility(max_tenor_days=120)
    return s.evidence("1", due_in_days=121)


def _merchant_inactive(s: Scene) -> str:
    s.facility()
    Merchant.objects.filter(pk=s.merchant.pk).update(status=Merchant.Status.SUSPENDED)
    return s.evidence("1")


def _kyc_not_verified(s: Scene) -> str:
    s.facility()
    Merchant.objects.filter(pk=s.merchant.pk).update(kyc_status=Merchant.KycStatus.PENDING)
    return s.evidence("1")


def _blacklisted(s: Scene) -> str:
    s.facility()
    blacklist_add(merchant=s.merchant, officer=s.officer, reason="Fraud alert", now=s.now)
    return s.evidence("1")


def _facility_limit(s: Scene) -> str:
    # 8,000.00 of a 10,000.00 line is taken by an advance against another debtor, so only the
    # facility's limit, not the marketplace's debtor cap, stands in the way of 4,000.00 more.
    s.facility(limit_minor=1_000_000)
    other = s.evidence("1", order="10000.00", invoice="10000.00", debtor=BUSINESS_DEBTOR)
    s.request(other, "first")
    return s.evidence("2", order="5000.00", invoice="5000.00")


def _debtor_limit(s: Scene) -> str:
    # The marketplace may account for half of a 100,000.00 line; 40,000.00 is held already.
    s.facility(debtor_cap_bp=5000)
    s.request(s.evidence("1", order="50000.00", invoice="50000.00"), "first")
    return s.evidence("2", order="20000.00", invoice="20000.00")


def _bank_debtor_limit(s: Scene) -> str:
    # The bank lends at most 500.00 against the marketplace, whoever the merchant; 800.00 asked.
    s.facility()
    debtor_limit_set(f"marketplace:{s.trade.source}", 50_000, s.now)
    return s.evidence("1")


def _already_assigned(s: Scene) -> str:
    s.facility()
    ref = s.evidence("1")
    s.request(ref, "first")
    return ref


def _assigned_on_chain(s: Scene) -> str:
    s.facility()
    ref = s.evidence("1")
    disbursed(s.trade, [ref], s.officer, s.now)
    # A database superuser releases the assignment behind the services' back: the chain still
    # records the receivable as the bank's.
    assignment_flip_released(ref)
    return ref


def _duplicate_invoice(s: Scene) -> str:
    s.facility()
    s.evidence("1")
    # The same invoice, spelled otherwise, through a second marketplace the merchant sells on.
    other = marketplace_create(code="second-mkt", name="Second Marketplace")
    MarketplaceMerchant.objects.create(marketplace=other, merchant=s.merchant, seller_id="s-2")
    twin = Trade(merchant=s.merchant, source=other.code, now=s.now)
    twin.order("ORD-2")
    twin.invoice("inv 1", "ORD-2")
    twin.delivered("ORD-2")
    return "inv 1"


@dataclass(frozen=True)
class Row:
    code: Code | None
    build: Callable[[Scene], str]
    expected: frozenset[str]


def row(code: Code, build: Callable[[Scene], str]) -> Row:
    return Row(code, build, frozenset({code.value}))


ROWS = [
    Row(None, _all_good, frozenset()),
    row(Code.NO_ORDER_LINK, _no_order_link),
    row(Code.NO_ORDER, _no_order),
    row(Code.ORDER_CANCELLED, _order_cancelled),
    row(Code.CURRENCY_MISMATCH, _currency_mismatch),
    row(Code.AMOUNT_EXCEEDS_ORDER, _amount_exceeds_order),
    row(Code.ORDER_OVER_INVOICED, _order_over_invoiced),
    row(Code.NO_DELIVERY, _no_delivery),
    row(Code.NOT_ALL_DELIVERED, _not_all_delivered),
    row(Code.RETURNED, _returned),
    row(Code.CREDITED, _credited),
    row(Code.PAID, _paid),
    row(Code.NO_FACILITY, _no_facility),
    row(Code.PAST_DUE, _past_due),
    row(Code.TOO_CLOSE_TO_DUE, _too_close_to_due),
    row(Code.TENOR_TOO_LONG, _tenor_too_long),
    row(Code.MERCHANT_INACTIVE, _merchant_inactive),
    row(Code.KYC_NOT_VERIFIED, _kyc_not_verified),
    row(Code.BLACKLISTED, _blacklisted),
    row(Code.FACILITY_LIMIT, _facility_limit),
    row(Code.DEBTOR_LIMIT, _debtor_limit),
    row(Code.BANK_DEBTOR_LIMIT, _bank_debtor_limit),
    row(Code.ALREADY_ASSIGNED, _already_assigned),
    row(Code.DUPLICATE_INVOICE, _duplicate_invoice),
    row(Code.ASSIGNED_ELSEWHERE, _assigned_elsewhere),
    row(Code.ASSIGNED_ON_CHAIN, _assigned_on_chain),
]


@pytest.fixture
def scene(
    trade: Trade, open_facility: Callable[..., Facility], officer: User, now: datetime
) -> Scene:
    return Scene(trade=trade, open_facility=open_facility, officer=officer, now=now)


def test_every_reason_code_has_a_row() -> None:
    assert {r.code for r in ROWS if r.code is not None} == set(Code)


@pytest.mark.parametrize("case", ROWS, ids=[r.code.value if r.code else "ELIGIBLE" for r in ROWS])
def test_each_rule_gives_exactly_its_own_code(scene: Scene, case: Row) -> None:
    ref = case.build(scene)

    verdict = judge(scene.merchant, ref)

    assert sorted(verdict.codes) == sorted(case.expected)
    assert verdict.eligible is (not case.expected)
    assert all(reason.message for reason in verdict.reasons)


@pytest.mark.parametrize("case", ROWS, ids=[r.code.value if r.code else "ELIGIBLE" for r in ROWS])
def test_a_quote_refuses_with_the_same_codes_the_verdict_shows(scene: Scene, case: Row) -> None:
    ref = case.build(scene)
    merchant = Merchant.objects.get(pk=scene.merchant.pk)

    if not case.expected:
        quote = advance_quote(merchant=merchant, refs=[ref], today=TODAY)
        assert [item.verdict.ref for item in quote.items] == [ref]
        return
    with pytest.raises(AdvanceRefused) as refused:
        advance_quote(merchant=merchant, refs=[ref], today=TODAY)
    assert {code for code, _ in refused.value.reasons[ref]} == case.expected


# Boundaries ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order", "invoice", "expected"),
    [
        ("1000.00", "999.99", []),
        ("1000.00", "1000.00", []),  # invoicing the whole order is the normal case
        ("1000.00", "1000.01", ["AMOUNT_EXCEEDS_ORDER"]),
    ],
)
def test_an_invoice_may_reach_but_not_exceed_its_order(
    scene: Scene, order: str, invoice: str, expected: list[str]
) -> None:
    scene.facility()
    ref = scene.evidence("1", order=order, invoice=invoice)

    assert judge(scene.merchant, ref).codes == expected


@pytest.mark.parametrize(
    ("due_in_days", "expected"),
    [
        (-1, ["PAST_DUE"]),
        (0, ["TOO_CLOSE_TO_DUE"]),
        (6, ["TOO_CLOSE_TO_DUE"]),
        (7, []),  # exactly min_days_to_due is fundable
        (120, []),  # exactly max_tenor_days is fundable
        (121, ["TENOR_TOO_LONG"]),
    ],
)
def test_days_to_due_boundaries(scene: Scene, due_in_days: int, expected: list[str]) -> None:
    scene.facility(min_days_to_due=7, max_tenor_days=120)
    ref = scene.evidence("1", due_in_days=due_in_days)

    assert judge(scene.merchant, ref).codes == expected


def test_a_receivable_due_today_is_refused_not_crashed_on(scene: Scene) -> None:
    """An invoice due today has no tenor to price: the refusal must be a reason, not a
    ValueError; and no facility may claim to finance it (min_days_to_due >= 1 in the DB)."""
    with pytest.raises(FacilityInvalid, match="facility_days_positive"):
        scene.facility(min_days_to_due=0)
    scene.facility(min_days_to_due=1)
    ref = scene.evidence("1", due_in_days=0)

    with pytest.raises(AdvanceRefused) as refused:
        advance_quote(merchant=scene.merchant, refs=[ref], today=TODAY)

    assert [code for code, _ in refused.value.reasons[ref]] == ["TOO_CLOSE_TO_DUE"]


def test_a_partial_credit_note_refuses_the_invoice_and_lowers_its_face(scene: Scene) -> None:
    scene.facility()
    ref = scene.evidence("1", invoice="1000.00")
    scene.trade.credited(ref, "100.00")

    verdict = judge(scene.merchant, ref)

    assert verdict.codes == ["CREDITED"]
    assert verdict.face_minor == 90_000
    assert "100.00 EUR" in verdict.reasons[0].message


def test_a_full_credit_note_is_credited_and_nothing_else(scene: Scene) -> None:
    scene.facility(limit_minor=1)  # nothing left to advance: no limit rule may fire on zero
    ref = scene.evidence("1", invoice="1000.00")
    scene.trade.credited(ref, "1000.00")

    verdict = judge(scene.merchant, ref)

    assert verdict.codes == ["CREDITED"]
    assert verdict.face_minor == 0


def test_rules_add_up_every_reason_at_once(scene: Scene) -> None:
    scene.facility()
    scene.trade.order("ORD-1", "500.00")
    scene.trade.invoice("INV-1", "ORD-1", "600.00", due_in_days=3)
    scene.trade.cancelled("ORD-1")

    assert sorted(judge(scene.merchant, "INV-1").codes) == [
        "AMOUNT_EXCEEDS_ORDER",
        "NO_DELIVERY",
        "ORDER_CANCELLED",
        "TOO_CLOSE_TO_DUE",
    ]


# advance_quote and advance_request refusals -----------------------------------------------------


def test_a_quote_names_each_bad_ref_with_all_its_codes(scene: Scene) -> None:
    scene.facility()
    good = scene.evidence("1")
    scene.trade.order("ORD-2")
    scene.trade.invoice("INV-2", "ORD-2")
    returned = scene.evidence("3")
    scene.trade.returned("ORD-3")
    scene.trade.credited(returned, "5.00")

    with pytest.raises(AdvanceRefused) as refused:
        advance_quote(merchant=scene.merchant, refs=[good, "INV-2", returned], today=TODAY)

    codes = {ref: sorted(code for code, _ in pairs) for ref, pairs in refused.value.reasons.items()}
    assert codes == {"INV-2": ["NO_DELIVERY"], returned: ["CREDITED", "RETURNED"]}


def test_unknown_refs_are_refused_as_unknown_invoices(
    scene: Scene, make_merchant: Callable[..., Merchant], trade_for: Callable[..., Trade]
) -> None:
    scene.facility()
    good = scene.evidence("1")
    neighbour = trade_for(make_merchant(kyc_status=Merchant.KycStatus.VERIFIED))
    neighbour.order("ORD-N")
    neighbour.invoice("INV-NEIGHBOUR", "ORD-N")  # another merchant's invoice is unknown here

    with pytest.raises(AdvanceRefused) as refused:
        advance_quote(
            merchant=scene.merchant, refs=[good, "INV-NOPE", "INV-NEIGHBOUR"], today=TODAY
        )

    assert {ref: [code for code, _ in pairs] for ref, pairs in refused.value.reasons.items()} == {
        "INV-NOPE": ["UNKNOWN_INVOICE"],
        "INV-NEIGHBOUR": ["UNKNOWN_INVOICE"],
    }


def test_one_advance_is_in_one_currency(scene: Scene) -> None:
    scene.facility(currency="EUR")
    scene.facility(currency="USD")
    euros = scene.evidence("1")
    dollars = scene.evidence("2", order_currency="USD", currency="USD")

    assert judge(scene.merchant, euros).eligible and judge(scene.merchant, dollars).eligible
    with pytest.raises(AdvanceRefused) as refused:
        advance_quote(merchant=scene.merchant, refs=[euros, dollars], today=TODAY)

    assert "EUR, USD" in refused.value.message
    assert refused.value.reasons == {}


@pytest.mark.parametrize(
    ("refs", "message"),
    [
        ([], "at least one"),
        (["INV-1", "INV-1"], "once"),
        ([f"INV-{n}" for n in range(MAX_RECEIVABLES_PER_ADVANCE + 1)], "At most"),
    ],
    ids=["none", "twice", "too-many"],
)
def test_malformed_ref_lists_are_refused(scene: Scene, refs: list[str], message: str) -> None:
    scene.facility()
    scene.evidence("1")

    with pytest.raises(AdvanceRefused, match=message):
        advance_quote(merchant=scene.merchant, refs=refs, today=TODAY)


def test_a_quote_writes_nothing(scene: Scene) -> None:
    scene.facility()
    ref = scene.evidence("1")
    before = db_counts()

    advance_quote(merchant=scene.merchant, refs=[ref], today=TODAY)

    assert db_counts() == before


@pytest.mark.parametrize("refusal", ["bad-evidence", "unknown", "mixed-currency", "limit"])
def test_a_refused_request_writes_nothing(scene: Scene, refusal: str) -> None:
    facility = scene.facility(limit_minor=100_000)  # room for one 1,000.00 invoice (800.00)
    scene.facility(currency="USD")
    good = scene.evidence("1")
    refs = {
        "bad-evidence": [good, scene.evidence("2", due_in_days=-3)],
        "unknown": [good, "INV-NOPE"],
        "mixed-currency": [good, scene.evidence("3", order_currency="USD", currency="USD")],
        "limit": [good, scene.evidence("4")],  # each fits alone; together they do not
    }[refusal]
    before = db_counts()

    with pytest.raises(AdvanceRefused):
        advance_request(merchant=scene.merchant, refs=refs, request_key="k", now=scene.now)

    assert db_counts() == before
    facility.refresh_from_db()
    assert facility.committed_minor == 0
    # Nothing is held: the good invoice alone is still fundable.
    assert judge(scene.merchant, good).eligible


def test_invoices_that_fit_the_debtor_cap_alone_may_not_exceed_it_together(scene: Scene) -> None:
    """The facility's room is checked for the items together; so must the debtor cap be."""
    scene.facility(debtor_cap_bp=5000)  # the marketplace may owe 50,000.00 of 100,000.00
    refs = [scene.evidence(str(n), order="40000.00", invoice="40000.00") for n in (1, 2)]
    assert all(judge(scene.merchant, ref).eligible for ref in refs)  # 32,000.00 each
    before = db_counts()

    with pytest.raises(AdvanceRefused) as refused:  # 64,000.00 together
        advance_request(merchant=scene.merchant, refs=refs, request_key="k", now=scene.now)

    assert {code for pairs in refused.value.reasons.values() for code, _ in pairs} == {
        "DEBTOR_LIMIT"
    }
    assert db_counts() == before
