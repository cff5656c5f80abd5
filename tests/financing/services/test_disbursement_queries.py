"""Issue 13: the queries of one disbursement are counted, so that they do not creep back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from psycopg import pq

from financing.models import Advance, Facility
from financing.services.decisions import advance_approve
from financing.services.requests import advance_request
from tests.financing.conftest import NoticeTaskRecorder, Trade

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

# One approval below the checker threshold, which disburses in its transaction, on PostgreSQL:
# 21 statements, where there were 46 before issue 13: the evidence was read in 14 queries, the
# assignments in 6 and the chart's accounts in 4, and the merchant, the facility and the
# invoices' faces were read again; then 29, until the active facilities were read again beside
# the advance's own, locked, and the chain was locked a second time; then 27, until the payment
# was written in one statement with its account, unless its cause had one; then 25, until the
# orders' shipments and their invoices were read in one statement and the debtors' bank-wide
# limits kept from their lock for the re-check. Two more since the nineteenth session: the
# chain's write is run on its generic plan (ledger.sql.generic_plans), set and reset around it.
# Its chart of accounts is open already (the merchant's first disbursement opened it) and the
# officer's permissions are read (an admin request reads them once per request either way).
# Each with whether it goes to PostgreSQL with others, in one round trip (ledger.sql's
# one_round_trip): 8 round trips with the test's savepoint pair, 6 without (12 and 10 in the
# eighteenth session, each statement its own before it).
DISBURSEMENT_QUERIES = [
    ("SAVEPOINT", False),  # pytest-django's test transaction: the service's outer atomic block
    ("lock the advance with its facility, read its merchant", True),
    ("its assignments with their debtors (read once for the whole decision)", True),
    ("lock the debtors' bank-wide limits, reading them (kept for the re-check)", True),
    ("lock the merchant's chain", True),
    # The evidence, re-checked under the chain lock:
    ("invoices", True),
    ("advances of the merchant in the checker's 24-hour window (the approval's)", True),
    ("receivables and their fingerprint twins", True),
    ("live assignments holding one of the refs or fingerprints", True),
    ("orders", True),
    ("shipments and invoices of the orders (one statement)", True),
    ("blacklisted?", True),
    ("debtor exposure", True),
    ("receivable.assigned entries of the chain", True),
    # The disbursement:
    ("UPDATE the advance", True),
    ("UPDATE its assignments held -> assigned", True),
    ("the merchant's seller id at each debtor's marketplace (the notices name it)", True),
    ("INSERT the payment with the merchant's payout account, unless its cause has one", True),
    ("the chart's accounts", True),
    ("INSERT the notices", True),
    ("journal entry, postings and balances (one statement)", True),
    # entries_append, no savepoint (nothing projects these entries), on the head the first
    # disbursement left (ledger/locks.py, head_known): no lock statement of its own.
    ("plan the next statement generically (ledger.sql.generic_plans)", True),
    (
        "INSERT the chain entries unless their keys were used before, move the head if the"
        " chain still ends where this process left it (one statement)",
        True,
    ),
    ("back to the plan mode before", True),
    ("RELEASE SAVEPOINT", False),  # the outer atomic block again
]


def test_a_disbursement_costs_a_fixed_number_of_queries(
    trade: Trade,
    facility: Facility,
    officer: User,
    now: datetime,
    notices_enqueued: NoticeTaskRecorder,
) -> None:
    merchant = trade.merchant
    first = advance_request(merchant=merchant, refs=trade.fundable(1), request_key="1", now=now)
    second = advance_request(merchant=merchant, refs=trade.fundable(1), request_key="2", now=now)
    advance_approve(advance=first, officer=officer, now=now)  # opens the chart of accounts

    shared: list[bool] = []

    def round_trip_note(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        shared.append(connection.connection.pgconn.pipeline_status != pq.PipelineStatus.OFF)
        return execute(sql, *args)

    with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(round_trip_note):
        disbursed = advance_approve(advance=second, officer=officer, now=now)

    assert disbursed.status == Advance.Status.DISBURSED
    sql = "\n".join(q["sql"][:160] for q in queries.captured_queries)
    assert len(queries) == len(DISBURSEMENT_QUERIES), sql
    assert shared == [together for _, together in DISBURSEMENT_QUERIES], sql
