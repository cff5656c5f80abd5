"""Issue 13: the evidence reads of a verdict go to PostgreSQL in one round trip."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from django.db import DataError, connection, transaction
from psycopg import pq

from financing.eligibility import verdicts
from financing.models import Assignment, Facility
from ledger.sql import literals, one_round_trip, rows_later
from tests.financing.conftest import Trade

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

# What a verdict reads once it has the invoices, none of it waiting on another's rows. (A
# decision's re-check reads no facility: it holds its own, locked.)
EVIDENCE_READS = [
    'SELECT "financing_receivable"',  # the receivables and their fingerprint twins
    "SELECT merchant_id, invoice_ref, fingerprint FROM financing_assignment",  # held
    'SELECT "ledger_order"',
    "SELECT 'shipment', order_ref",  # the orders' shipments and invoices
    "SELECT 1 FROM financing_blacklisting",
    "SELECT a.currency, s.debtor_key, SUM(s.advance_minor)",  # the merchant's debtor exposure
    "SELECT external_ref FROM ledger_entry",  # the chain's receivable.assigned entries
    'SELECT "financing_facility"',  # the merchant's active facilities (no decision holds one)
]


def _statements_with_pipeline_status() -> tuple[list[tuple[str, bool]], Callable[..., Any]]:
    seen: list[tuple[str, bool]] = []

    def wrapper(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        status = connection.connection.pgconn.pipeline_status
        seen.append((" ".join(sql.split()), status != pq.PipelineStatus.OFF))
        return execute(sql, *args)

    return seen, wrapper


def test_a_verdicts_evidence_reads_share_one_round_trip(
    trade: Trade, facility: Facility, today: date
) -> None:
    trade.order("ORD-1")
    trade.invoice("INV-1", order_ref="ORD-1")
    trade.delivered("ORD-1")
    seen, wrapper = _statements_with_pipeline_status()

    with connection.execute_wrapper(wrapper):
        (verdict,) = verdicts(trade.merchant, today, ["INV-1"])

    assert verdict.eligible, verdict.codes
    pipelined = [sql for sql, in_pipeline in seen if in_pipeline]
    assert len(pipelined) == len(EVIDENCE_READS), pipelined
    for sql, start in zip(pipelined, EVIDENCE_READS, strict=True):
        assert sql.startswith(start), (sql[:120], start)
    # The invoices come first, alone: the reads above take their refs and orders from them.
    assert seen[0][0].startswith('SELECT "ledger_invoice"') and not seen[0][1]


def test_rows_read_in_one_round_trip_come_back_to_their_own_reads(trade: Trade) -> None:
    trade.order("ORD-1", amount="10.00")
    trade.order("ORD-2", amount="20.00")
    query = "SELECT ref, amount_minor FROM ledger_order WHERE merchant_id = %s AND ref = %s"

    with one_round_trip():
        first = rows_later(query, [trade.merchant.pk, "ORD-1"])
        second = rows_later(query, [trade.merchant.pk, "ORD-2"])

    assert second() == [("ORD-2", 2000)]
    assert first() == [("ORD-1", 1000)]


def test_a_statement_that_fails_in_one_round_trip_raises_djangos_error() -> None:
    with (
        pytest.raises(DataError, match="division by zero"),
        transaction.atomic(),
        one_round_trip(),
    ):
        rows_later("SELECT 1 / %s", [0])

    assert rows_later("SELECT 2", [])() == [(2,)]  # the connection goes on


def test_the_held_read_names_the_live_statuses_as_the_partial_indexes_do(
    trade: Trade, facility: Facility, today: date
) -> None:
    """The statuses are written into the SQL (ledger.sql.literals), not passed as parameters:
    only then does the partial index on live assignments serve PostgreSQL's generic plan, and
    PostgreSQL stops planning the read anew at every verdict (~0.2 ms in the books benchmark,
    where with parameters it did)."""
    trade.order("ORD-1")
    trade.invoice("INV-1", order_ref="ORD-1")
    seen, wrapper = _statements_with_pipeline_status()

    with connection.execute_wrapper(wrapper):
        verdicts(trade.merchant, today, ["INV-1"])

    (held,) = [sql for sql, _ in seen if sql.startswith(EVIDENCE_READS[1])]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname IN"
            " ('assignment_one_live_per_fingerprint', 'assignment_one_live_per_receivable')"
        )
        predicates = {row[0].partition(" WHERE ")[2] for row in cursor.fetchall()}
    live = [status.value for status in Assignment.LIVE]
    in_array = ", ".join(f"'{value}'::character varying" for value in live)
    assert predicates == {f"((status)::text = ANY ((ARRAY[{in_array}])::text[]))"}
    assert held.count(f"WHERE status IN ({literals(live)})") == 2, held
