"""Issue 13: the receivables list is filtered, counted and paged by the database, so a page reads
its own rows alone however long the merchant's history; it says what the rules say of each
receivable's standing, the same on the list as on the receivable's own page."""

from __future__ import annotations

import re
from copy import copy
from datetime import datetime, timedelta
from itertools import product
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from financing.eligibility import open_verdicts, verdicts
from financing.models import Assignment
from financing.services.quotes import advance_withdraw
from financing.services.requests import advance_request
from ledger.models import Invoice
from portal.receivables.selectors import (
    ReceivableFilter,
    Status,
    receivable_detail,
    receivables_for_merchant,
    receivables_judged,
)
from portal.receivables.views import PAGE_SIZE
from tests.financing.conftest import TODAY, Trade
from tests.portal.conftest import Scenario, portal_sign_in

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def every_standing(scenario: Scenario, trade: Trade, now: datetime) -> dict[str, str]:
    """The scenario's receivables and one more for each way a receivable can stand."""
    [requested, released, paid, credited, part_credited] = trade.fundable(5, amount="300.00")
    advance_request(merchant=scenario.a, refs=[requested], request_key="held", now=now)
    withdrawn = advance_request(merchant=scenario.a, refs=[released], request_key="out", now=now)
    advance_withdraw(advance=withdrawn, now=now)
    trade.paid("PO-LIST", paid, "300.00")
    trade.credited(credited, amount="300.00")
    trade.credited(part_credited, amount="100.00")
    return {
        "requested": requested,
        "released": released,
        "paid": paid,
        "credited": credited,
        "part_credited": part_credited,
        "settled": scenario.financed[0],
        "financed": scenario.financed[1],
    }


def _standing_by_rule(merchant_id: int, invoice: Invoice) -> str:
    """What the portal promises, read row by row: the latest assignment not released decides
    requested or financed, then the invoice's own columns, then a settled assignment."""
    latest = (
        Assignment.objects.filter(merchant_id=merchant_id, invoice_ref=invoice.ref)
        .exclude(status=Assignment.Status.RELEASED)
        .order_by("id")
        .values_list("status", flat=True)
        .last()
    )
    if latest == Assignment.Status.ASSIGNED:
        return Status.FINANCED
    if latest == Assignment.Status.HELD:
        return Status.REQUESTED
    if invoice.status == Invoice.Status.CREDITED:
        return Status.CREDITED
    if invoice.paid_minor or latest == Assignment.Status.SETTLED:
        return Status.PAID
    return Status.OPEN


def test_each_receivable_stands_as_the_rules_say(
    scenario: Scenario, every_standing: dict[str, str]
) -> None:
    listed = {
        row.ref: row.status
        for row in receivables_for_merchant(
            merchant=scenario.a, today=TODAY, filters=ReceivableFilter()
        )
    }

    invoices = Invoice.objects.filter(merchant=scenario.a)
    assert listed == {i.ref: _standing_by_rule(scenario.a.pk, i) for i in invoices}
    assert {name: listed[ref] for name, ref in every_standing.items()} == {
        "requested": Status.REQUESTED,
        "released": Status.OPEN,
        "paid": Status.PAID,
        "credited": Status.CREDITED,
        "part_credited": Status.OPEN,
        "settled": Status.PAID,
        "financed": Status.FINANCED,
    }
    for ref, status in listed.items():  # the receivable's own page says the same
        detail = receivable_detail(merchant=scenario.a, ref=ref, today=TODAY)
        assert detail is not None and detail.row.status == status, ref


def test_every_filter_chooses_what_filtering_row_by_row_chooses(
    scenario: Scenario, every_standing: dict[str, str]
) -> None:
    every = list(
        receivables_for_merchant(merchant=scenario.a, today=TODAY, filters=ReceivableFilter())
    )
    fundable = {v.ref for v in open_verdicts(scenario.a, TODAY) if v.eligible}
    dues = sorted({row.invoice.due_date for row in every})
    assert len(dues) >= 3 and fundable and len(fundable) < len(every)

    for status, eligible, due_from, due_to in product(
        ("", *Status.ALL), (None, True, False), (None, dues[1]), (None, dues[-2])
    ):
        filters = ReceivableFilter(status, eligible, due_from, due_to)
        expected = [
            row.ref
            for row in every
            if (not status or row.status == status)
            and (eligible is None or (row.ref in fundable) == eligible)
            and (due_from is None or row.invoice.due_date >= due_from)
            and (due_to is None or row.invoice.due_date <= due_to)
        ]

        listed = receivables_for_merchant(merchant=scenario.a, today=TODAY, filters=filters)

        assert [row.ref for row in listed] == expected, filters
        assert listed.count() == len(expected), filters
        assert [row.eligible for row in listed] == [ref in fundable for ref in expected]


def test_a_page_reads_its_own_rows_and_the_count_is_the_databases(
    scenario: Scenario, trade: Trade
) -> None:
    issued = TODAY - timedelta(days=90)
    for n in range(60):  # history: paid long ago
        trade.order(f"ORD-OLD-{n}", "10.00")
        trade.invoice(f"INV-OLD-{n}", f"ORD-OLD-{n}", "10.00", due_in_days=-60, issue_date=issued)
    client = portal_sign_in(scenario.user_a)

    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("portal:receivables"), {"page": 2, "status": "open"})

    page = response.context["page"]
    invoices = Invoice.objects.filter(merchant=scenario.a)
    open_ones = [i for i in invoices if _standing_by_rule(scenario.a.pk, i) == Status.OPEN]
    assert page.paginator.count == len(open_ones) > 2 * PAGE_SIZE
    assert len(page.object_list) == PAGE_SIZE
    invoice_reads = [
        q["sql"] for q in queries.captured_queries if 'FROM "ledger_invoice"' in q["sql"]
    ]
    assert any("COUNT(*)" in sql for sql in invoice_reads), invoice_reads
    paged = [sql for sql in invoice_reads if f"LIMIT {PAGE_SIZE} OFFSET {PAGE_SIZE}" in sql]
    assert paged, invoice_reads
    whole = [sql for sql in invoice_reads if "LIMIT" not in sql and "COUNT(*)" not in sql]
    # Every other read of invoices is bounded: the open candidates (open_verdicts), or the
    # page's own invoices and their orders (the verdicts shown); never the whole history.
    assert whole and all(re.search(r'\bdue_date"? > ', sql) or " IN ('" in sql for sql in whole), (
        whole
    )


def test_the_first_page_holds_what_is_still_open_not_the_oldest_history(
    scenario: Scenario, trade: Trade
) -> None:
    issued = TODAY - timedelta(days=400)
    for n in range(2 * PAGE_SIZE):  # a long history, due long ago
        trade.order(f"ORD-OLD-{n}", "10.00")
        trade.invoice(f"INV-OLD-{n}", f"ORD-OLD-{n}", "10.00", due_in_days=-300, issue_date=issued)
    client = portal_sign_in(scenario.user_a)

    first = client.get(reverse("portal:receivables")).context["page"]

    listed = [row.ref for row in first.object_list]
    fundable = [v.ref for v in open_verdicts(scenario.a, TODAY) if v.eligible]
    assert fundable and set(fundable) <= set(listed)
    dues = [row.invoice.due_date for row in first.object_list]
    assert dues == sorted(dues, reverse=True)
    assert not any(ref.startswith("INV-OLD-") for ref in listed[: len(fundable)])


@pytest.mark.postgres
def test_an_invoices_latest_assignment_is_found_by_index(scenario: Scenario) -> None:
    settled = Assignment.objects.get(merchant=scenario.a, invoice_ref=scenario.financed[0])
    history = []
    for n in range(2_000):  # a merchant's settled past, as years of financing leave it
        past = copy(settled)
        past.pk, past.invoice_ref = None, f"PAST-{n}"
        history.append(past)
    Assignment.objects.bulk_create(history)
    listed = receivables_for_merchant(
        merchant=scenario.a, today=TODAY, filters=ReceivableFilter(status="financed")
    )
    with CaptureQueriesContext(connection) as queries:
        listed.count()
    [counted] = queries.captured_queries

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE financing_assignment")
        cursor.execute(f"EXPLAIN {counted['sql']}")
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "assignment_receivable_idx" in plan, plan


@pytest.mark.postgres
def test_a_page_reads_its_own_rows_in_the_indexs_order(trade: Trade) -> None:
    issued = TODAY - timedelta(days=90)
    for n in range(3 * PAGE_SIZE):  # history, due on a few days long past
        trade.order(f"ORD-OLD-{n}", "10.00")
        trade.invoice(
            f"INV-OLD-{n}", f"ORD-OLD-{n}", "10.00", due_in_days=n % 3 - 60, issue_date=issued
        )
    with connection.cursor() as cursor:  # as autovacuum would: plans on the tables as they are
        for table in ("ledger_invoice", "financing_receivable", "financing_assignment"):
            cursor.execute(f"ANALYZE {table}")
    listed = receivables_for_merchant(
        merchant=trade.merchant, today=TODAY, filters=ReceivableFilter()
    )
    with CaptureQueriesContext(connection) as queries:
        listed[:PAGE_SIZE]
    [paged] = queries.captured_queries

    with connection.cursor() as cursor:
        # Tables this small would be sorted anyway: ask whether the index alone gives the order.
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_incremental_sort = off")
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {paged['sql']}")
        [[plan]] = cursor.fetchone()

    main, subplans = _nodes(plan["Plan"])
    assert "invoice_due_ref_idx" in {node.get("Index Name") for node in main}, plan
    assert not [node for node in main if "Sort" in node["Node Type"]], plan
    # Each invoice's latest assignment is looked up for the page's rows alone: for every
    # invoice before a sort, it made a page of a merchant with 50,000 invoices twice as slow.
    loops = [node["Actual Loops"] for node in subplans]
    assert loops and max(loops) <= PAGE_SIZE, loops


def _nodes(node: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The plan's nodes outside its subplans, and the subplans' own top nodes."""
    main, subplans = [node], []
    for child in node.get("Plans", []):
        if child.get("Parent Relationship") == "SubPlan":
            subplans.append(child)
        else:
            child_main, child_subplans = _nodes(child)
            main += child_main
            subplans += child_subplans
    return main, subplans


def test_open_receivables_are_judged_once_for_the_list_and_its_page(
    scenario: Scenario, every_standing: dict[str, str]
) -> None:
    every = list(
        receivables_for_merchant(merchant=scenario.a, today=TODAY, filters=ReceivableFilter())
    )
    judged_open = [row for row in every if row.open_verdict is not None]
    assert judged_open and len(judged_open) < len(every)

    with CaptureQueriesContext(connection) as queries:
        shown = receivables_judged(merchant=scenario.a, today=TODAY, listed=judged_open)
    assert not queries.captured_queries  # their verdicts came with the list
    assert [row.verdict for row in shown] == [row.open_verdict for row in judged_open]

    shown = receivables_judged(merchant=scenario.a, today=TODAY, listed=every)
    assert {row.ref: row.verdict for row in shown} == {
        v.ref: v for v in verdicts(scenario.a, TODAY)
    }
