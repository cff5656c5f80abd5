"""Issue 13: eligibility finds an invoice's receivable.assigned entries by an index of them, not
by reading the merchant's whole chain, which grows with every event the marketplace sends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection

from financing import assigned_on_chain
from financing.eligibility import Code, verdicts
from financing.models import Facility, assignment_entry_ref
from ledger.event_fields import REF_MAX_LENGTH
from ledger.events import ValidEvent, system_event
from ledger.services import NewEntry, entries_append
from merchants.models import Merchant
from tests.conftest import order_placed
from tests.financing.conftest import Trade
from tests.financing.integrity_helpers import assignment_flip_released
from tests.financing.settlement_helpers import disbursed

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

LONG = "INV-" + "7" * (REF_MAX_LENGTH - 4)  # assigned on the chain as "sha256-<hex>@<advance>"
# Invoice refs are free text: an '@' of their own, letters beyond ASCII.
INVOICES = ["INV-1", "INV@2", "Rechnung-Ä-3", LONG]


def _assigned(invoice_ref: str, advance_ref: str, now: datetime) -> ValidEvent:
    return system_event(
        "receivable.assigned",
        assignment_entry_ref(invoice_ref=invoice_ref, advance_ref=advance_ref),
        now,
        {
            "currency": "EUR",
            "amount": "10.00",
            "invoice_ref": invoice_ref,
            "advance_ref": advance_ref,
            "assignee": "Bank",
        },
    )


def _append(merchant: Merchant, events: list[ValidEvent], now: datetime) -> None:
    entries_append(
        source=settings.LEDGER_SYSTEM_SOURCE,
        entries=[NewEntry(merchant_id=merchant.pk, event=event) for event in events],
        now=now,
    )


def _invoice_part(ref: str) -> str:
    return ref.rpartition("@")[0]


def test_the_index_read_finds_what_reading_the_whole_chain_finds(
    make_merchant: Callable[..., Merchant], now: datetime
) -> None:
    merchant, other = make_merchant(), make_merchant()
    _append(merchant, [_assigned(ref, "adv_a", now) for ref in INVOICES], now)
    _append(merchant, [_assigned("INV-1", "adv_b", now), _assigned("INV-9", "adv_b", now)], now)
    _append(other, [_assigned("INV-1", "adv_c", now)], now)  # another merchant's invoice
    hashed = [_invoice_part(assignment_entry_ref(invoice_ref=LONG, advance_ref="adv_a"))]

    for parts in (["INV-1"], ["INV@2", *hashed], ["Rechnung-Ä-3", "INV-404"], [*INVOICES, *hashed]):
        whole = [
            r for r in assigned_on_chain._whole_chain(merchant.pk) if _invoice_part(r) in parts
        ]
        by_index = assigned_on_chain._by_invoice_later(merchant.pk, parts)()
        assert by_index == whole, parts
    assert assigned_on_chain._by_invoice_later(merchant.pk, ["INV-1"])() == [
        "INV-1@adv_a",
        "INV-1@adv_b",
    ]
    assert assigned_on_chain._by_invoice_later(merchant.pk, hashed)() == [
        assignment_entry_ref(invoice_ref=LONG, advance_ref="adv_a")
    ]


def test_the_read_goes_through_the_index_of_assignments_even_as_a_prepared_statement(
    make_merchant: Callable[..., Merchant], now: datetime
) -> None:
    merchant = make_merchant()
    # A chain long enough that reading it whole is the costly way, and the statistics to say so.
    _append(merchant, [order_placed(f"ORD-{n}") for n in range(2_000)], now)
    _append(merchant, [_assigned(f"INV-{n}", "adv_a", now) for n in range(20)], now)
    numbered = assigned_on_chain._BY_INVOICE.replace("%s", "$1", 1).replace("%s", "$2", 1)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE ledger_entry")
        # The plan a prepared statement keeps once it stops planning per call: no parameter
        # values known, so only a query whose text matches the index's may use it.
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE assigned_read (bigint, text[]) AS {numbered}")
        cursor.execute(f"EXPLAIN EXECUTE assigned_read ({merchant.pk}, ARRAY['INV-3'])")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("DEALLOCATE assigned_read")
    # Found by the invoice, in the index: not every assignment of the chain, filtered.
    [condition] = [line for line in plan.splitlines() if "Index Cond" in line]
    assert "entry_assigned_invoice_idx" in plan and "reverse" in condition, plan
    assert assigned_on_chain._by_invoice_later(merchant.pk, ["INV-3"])() == ["INV-3@adv_a"]


def test_a_long_invoice_ref_the_chain_gave_the_bank_is_never_fundable_again(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    trade.order("ORD-LONG")
    trade.invoice(LONG, "ORD-LONG")
    trade.delivered("ORD-LONG")
    advance = disbursed(trade, [LONG], officer, now)
    # A database superuser releases the assignment behind the services' back.
    assignment_flip_released(LONG)

    [verdict] = verdicts(trade.merchant, now.date(), [LONG])

    assert verdict.codes == [Code.ASSIGNED_ON_CHAIN.value]
    assert advance.ref in verdict.reasons[0].message
