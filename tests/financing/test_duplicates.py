"""One invoice, financed once: cosmetic variants of its number through two marketplaces.

The supplier sells on two marketplaces, either as two merchant rows with the same tax id (each
marketplace onboarded it) or as one merchant linked to both. Each marketplace pushes the same
invoice under its own spelling of the number. An invoice is (its supplier, its normalised
number): the first arrival keeps its chance; every later one is a duplicate, whatever its
amount, date or currency; an invoice naming another supplier is refused at ingest; and the
database refuses a second live assignment of the fingerprint however the services are
bypassed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from financing.eligibility import Verdict, verdicts
from financing.exceptions import AdvanceRefused
from financing.models import Advance, Assignment, Facility, Receivable
from financing.services.decisions import advance_approve, advance_reject
from financing.services.requests import advance_request
from ledger.exceptions import EventInvalid
from ledger.selectors import seller_id_of
from merchants.models import Debtor, Marketplace, MarketplaceMerchant, Merchant
from merchants.services import marketplace_create
from tests.api.conftest import signed_client
from tests.financing.conftest import TODAY, Trade, constraint_of, db_counts

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

TAX_ID = "DE 300 000 001"
VARIANTS = [
    "INV-001",
    "inv 001",
    "INV\u2010001",  # U+2010 HYPHEN
    "INV-0001",
    "\u0406NV-001",  # U+0406 CYRILLIC CAPITAL LETTER BYELORUSSIAN-UKRAINIAN I
]


@dataclass
class Supplier:
    """The supplier as Chainfin knows it: one or two merchant rows, a trade per marketplace."""

    via_a: Trade
    via_b: Trade

    def merchants(self) -> list[Merchant]:
        return list({t.merchant.pk: t.merchant for t in (self.via_a, self.via_b)}.values())


def _verified(merchant: Merchant) -> Merchant:
    Merchant.objects.filter(pk=merchant.pk).update(kyc_status=Merchant.KycStatus.VERIFIED)
    return Merchant.objects.get(pk=merchant.pk)


@pytest.fixture
def second_marketplace(db: None) -> Marketplace:
    return marketplace_create(code="second-mkt", name="Second Marketplace")


@pytest.fixture(params=["two-merchant-rows", "one-merchant-two-links"])
def supplier(
    request: pytest.FixtureRequest,
    marketplace: Marketplace,
    second_marketplace: Marketplace,
    make_merchant: Callable[..., Merchant],
    open_facility: Callable[..., Facility],
    now: datetime,
) -> Supplier:
    first = _verified(make_merchant(tax_id="DE300000001"))
    if request.param == "two-merchant-rows":
        # Onboarded again by the second marketplace, its tax id typed differently.
        second = _verified(make_merchant(tax_id=TAX_ID.lower(), marketplace=second_marketplace))
    else:
        MarketplaceMerchant.objects.create(
            marketplace=second_marketplace, merchant=first, seller_id="same-supplier"
        )
        second = first
    for merchant in {first.pk: first, second.pk: second}.values():
        open_facility(merchant)
    return Supplier(
        via_a=Trade(merchant=first, source=marketplace.code, now=now),
        via_b=Trade(merchant=second, source=second_marketplace.code, now=now),
    )


def arrive(trade: Trade, number: str, n: int, amount: str = "1000.00", **invoice_kw: Any) -> str:
    """Order, invoice ``number`` and delivery: fundable on its own evidence."""
    trade.order(f"ORD-{n}", amount)
    trade.invoice(number, f"ORD-{n}", amount, **invoice_kw)
    trade.delivered(f"ORD-{n}")
    return number


def judge(trade: Trade, ref: str) -> Verdict:
    [verdict] = verdicts(trade.merchant, TODAY, [ref])
    return verdict


def arrive_all(supplier: Supplier) -> list[tuple[Trade, str]]:
    """The five spellings, alternating marketplaces, the first through marketplace A."""
    arrivals = []
    for n, number in enumerate(VARIANTS):
        trade = supplier.via_a if n % 2 == 0 else supplier.via_b
        arrivals.append((trade, arrive(trade, number, n)))
    return arrivals


def test_later_spellings_of_one_invoice_are_duplicates(supplier: Supplier) -> None:
    arrivals = arrive_all(supplier)

    judged = [judge(trade, ref) for trade, ref in arrivals]

    assert len({v.fingerprint for v in judged}) == 1
    assert judged[0].codes == []
    assert [v.codes for v in judged[1:]] == [["DUPLICATE_INVOICE"]] * (len(VARIANTS) - 1)


def test_a_twin_is_refused_once_the_first_is_financed(
    supplier: Supplier, officer: User, now: datetime
) -> None:
    (first_trade, first), *twins = arrive_all(supplier)
    advance = advance_request(
        merchant=first_trade.merchant, refs=[first], request_key="first", now=now
    )
    assert advance_approve(advance=advance, officer=officer, now=now).status == "disbursed"

    for n, (trade, twin) in enumerate(twins):
        before = db_counts()
        with pytest.raises(AdvanceRefused) as refused:
            advance_request(merchant=trade.merchant, refs=[twin], request_key=f"t{n}", now=now)
        assert sorted(code for code, _ in refused.value.reasons[twin]) == [
            "ALREADY_ASSIGNED",
            "DUPLICATE_INVOICE",
        ]
        assert db_counts() == before
    assert Assignment.objects.filter(status__in=Assignment.LIVE).count() == 1


def test_an_invoice_naming_another_supplier_is_refused_at_ingest(
    supplier: Supplier, make_merchant: Callable[..., Merchant], now: datetime
) -> None:
    """A reseller's chain carrying the supplier's invoice: refused, not a second receivable."""
    first = arrive(supplier.via_a, "INV-001", 1)
    reseller = Trade(
        merchant=_verified(make_merchant(tax_id="FR99999999999")),
        source=supplier.via_a.source,
        now=now,
    )
    reseller.order("ORD-R")
    before = db_counts()

    with pytest.raises(EventInvalid) as refused:
        reseller.append(
            "invoice.issued",
            "INV 1",
            {
                "currency": "EUR",
                "amount": "1000.00",
                "order_ref": "ORD-R",
                "issue_date": judge(supplier.via_a, first).issue_date.isoformat(),
                "due_date": judge(supplier.via_a, first).due_date.isoformat(),
                "debtor": {"kind": "marketplace", "name": "Acme Marketplace"},
                "supplier_tax_id": "de-300.000.001",
            },
        )

    assert [e.pointer for e in refused.value.errors] == ["/0/data/supplier_tax_id"]
    assert db_counts() == before
    assert not Receivable.objects.filter(merchant=reseller.merchant).exists()


def test_inv_77_through_a_second_marketplace_with_a_bare_tax_id_is_a_duplicate(
    supplier: Supplier, marketplace: Marketplace, second_marketplace: Marketplace
) -> None:
    """Issue 8, item 3: "inv 77" from marketplace A, then "INV-77" naming the supplier by its
    bare national tax id "300000001" (a German merchant) through marketplace B, by the API."""
    arrive(supplier.via_a, "inv 77", 1)
    via_b = signed_client(second_marketplace)
    seller = seller_id_of(marketplace=second_marketplace, merchant=supplier.via_b.merchant)
    events = [
        {
            "type": "order.placed",
            "merchant": seller,
            "ref": "ORD-B77",
            "occurred_at": "2026-10-01T09:00:00Z",
            "data": {"currency": "EUR", "amount": "1000.00"},
        },
        {
            "type": "invoice.issued",
            "merchant": seller,
            "ref": "INV-77",
            "occurred_at": "2026-10-02T09:00:00Z",
            "data": {
                "currency": "EUR",
                "amount": "990.00",  # another amount: the same number is still the same invoice
                "order_ref": "ORD-B77",
                "issue_date": "2026-10-02",
                "due_date": "2026-12-15",
                "debtor": {"kind": "marketplace", "name": "Second Marketplace"},
                "supplier_tax_id": "300000001",
            },
        },
    ]

    response = via_b.post("/api/v1/events", {"events": events})

    assert response.status_code == 201, response.content
    assert judge(supplier.via_a, "inv 77").codes == []
    duplicate = judge(supplier.via_b, "INV-77")
    assert duplicate.fingerprint == judge(supplier.via_a, "inv 77").fingerprint
    assert "DUPLICATE_INVOICE" in duplicate.codes
    [reason] = [r for r in duplicate.reasons if r.code == "DUPLICATE_INVOICE"]
    assert f"'inv 77' from {marketplace.code}" in reason.message


def test_a_supplier_tax_id_of_someone_else_is_a_422_at_its_field(
    supplier: Supplier, second_marketplace: Marketplace
) -> None:
    seller = seller_id_of(marketplace=second_marketplace, merchant=supplier.via_b.merchant)
    invoice = {
        "type": "invoice.issued",
        "merchant": seller,
        "ref": "INV-77",
        "occurred_at": "2026-10-02T09:00:00Z",
        "data": {
            "currency": "EUR",
            "amount": "990.00",
            "order_ref": "ORD-B77",
            "issue_date": "2026-10-02",
            "due_date": "2026-12-15",
            "debtor": {"kind": "marketplace", "name": "Second Marketplace"},
            "supplier_tax_id": "300000002",
        },
    }
    before = db_counts()

    response = signed_client(second_marketplace).post("/api/v1/events", {"events": [invoice]})

    assert response.status_code == 422
    body = json.loads(response.content)
    assert body["code"] == "validation_error"
    assert [e["pointer"] for e in body["errors"]] == ["/events/0/data/supplier_tax_id"]
    assert db_counts() == before


@pytest.mark.parametrize(
    "changes",
    [{"amount": "1000.01"}, {"issue_date": TODAY.replace(day=2)}, {"currency": "USD"}],
    ids=["other-amount", "other-issue-date", "other-currency"],
)
def test_the_same_number_with_other_terms_is_a_duplicate(
    supplier: Supplier, changes: dict[str, object]
) -> None:
    """Invoice numbers are unique per supplier: another amount, date or currency under the same
    number means one of the two is wrong, and an officer must look; it is never a new invoice."""
    arrive(supplier.via_a, "INV-001", 1)
    invoice_kw = dict(changes)
    amount = str(invoice_kw.pop("amount", "1000.00"))
    currency = str(invoice_kw.pop("currency", "EUR"))
    supplier.via_b.order("ORD-2", amount, currency=currency)
    supplier.via_b.invoice("inv 001", "ORD-2", amount, currency=currency, **invoice_kw)
    supplier.via_b.delivered("ORD-2")

    assert "DUPLICATE_INVOICE" in judge(supplier.via_b, "inv 001").codes


@pytest.mark.parametrize(
    ("first", "number"),
    [
        ("INV-11", "INV-1-1"),  # a separator between digits is kept: INV-11 is another invoice
        ("INV-001", "INV-OO1"),  # letter O is not digit 0
    ],
    ids=["digits-kept-apart", "letter-o"],
)
def test_a_different_invoice_is_not_a_duplicate(
    supplier: Supplier, first: str, number: str
) -> None:
    arrive(supplier.via_a, first, 1)
    other = arrive(supplier.via_b, number, 2)

    assert judge(supplier.via_b, other).codes == []


def test_another_supplier_with_the_same_number_is_not_a_duplicate(
    supplier: Supplier,
    make_merchant: Callable[..., Merchant],
    open_facility: Callable[..., Facility],
) -> None:
    arrive(supplier.via_a, "INV-001", 1)
    stranger = _verified(make_merchant(tax_id="DE300000002"))
    open_facility(stranger)
    trade = Trade(merchant=stranger, source=supplier.via_a.source, now=supplier.via_a.now)

    assert judge(trade, arrive(trade, "INV-001", 2)).codes == []


# The database: one live assignment per fingerprint, whatever the services do ----------------


def _assignment_like(held: Assignment, *, advance: Advance, invoice_ref: str, **kw: object) -> None:
    Assignment.objects.create(
        advance=advance,
        merchant=advance.merchant,
        invoice_ref=invoice_ref,
        fingerprint=kw.pop("fingerprint", held.fingerprint),
        debtor=Debtor.objects.get(pk=held.debtor_id),
        face_minor=held.face_minor,
        advance_minor=held.advance_minor,
        due_date=held.due_date,
        **kw,
    )


def test_the_database_refuses_a_second_live_assignment_of_a_fingerprint(
    supplier: Supplier, officer: User, now: datetime
) -> None:
    (first_trade, first), (twin_trade, twin), *_ = arrive_all(supplier)
    holder = advance_request(merchant=first_trade.merchant, refs=[first], request_key="a", now=now)
    held = holder.assignments.get()
    # Another advance of the twin's merchant, for an unrelated invoice, to smuggle the twin into.
    other = arrive(twin_trade, "INV-OTHER", 99, amount="500.00")
    smuggler = advance_request(merchant=twin_trade.merchant, refs=[other], request_key="b", now=now)

    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        _assignment_like(held, advance=smuggler, invoice_ref=twin)
    assert constraint_of(refused.value) == "assignment_one_live_per_fingerprint"

    # Negative control: the same row under another fingerprint is accepted, so it was the
    # fingerprint, not some other column, that the database refused.
    with transaction.atomic():
        _assignment_like(held, advance=smuggler, invoice_ref=twin, fingerprint="f" * 64)
        transaction.set_rollback(True)

    # Released holds do not block: once the first request is rejected, the twin may be held.
    advance_reject(advance=holder, officer=officer, now=now, note="Wrong invoice")
    assert holder.assignments.get().status == Assignment.Status.RELEASED
    _assignment_like(held, advance=smuggler, invoice_ref=twin)
    assert Assignment.objects.filter(fingerprint=held.fingerprint, status="held").count() == 1


def test_the_database_refuses_a_released_and_a_live_hold_of_one_receivable_only_when_live(
    supplier: Supplier, officer: User, now: datetime
) -> None:
    first = arrive(supplier.via_a, "INV-001", 1)
    merchant = supplier.via_a.merchant
    holder = advance_request(merchant=merchant, refs=[first], request_key="a", now=now)
    held = holder.assignments.get()
    other = arrive(supplier.via_a, "INV-OTHER", 2, amount="500.00")
    second = advance_request(merchant=merchant, refs=[other], request_key="b", now=now)

    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        _assignment_like(held, advance=second, invoice_ref=first, fingerprint="e" * 64)
    assert constraint_of(refused.value) == "assignment_one_live_per_receivable"

    advance_reject(advance=holder, officer=officer, now=now, note="Wrong invoice")
    _assignment_like(held, advance=second, invoice_ref=first, fingerprint="e" * 64)
