"""Issue 13: the queries of one disbursement are counted, so that they do not creep back."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from financing.models import Advance, Facility
from financing.services.decisions import advance_approve
from financing.services.requests import advance_request
from tests.financing.conftest import NoticeTaskRecorder, Trade

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

# One approval below the checker threshold, which disburses in its transaction, on PostgreSQL:
# 23 statements, where there were 46 before issue 13: the evidence was read in 14 queries, the
# assignments in 6 and the chart's accounts in 4, and the merchant, the facility and the
# invoices' faces were read again; then 29, until the active facilities were read again beside
# the advance's own, locked, and the chain was locked a second time; then 27, until the payment
# was written in one statement with its account, unless its cause had one; then 25, until the
# orders' shipments and their invoices were read in one statement and the debtors' bank-wide
# limits kept from their lock for the re-check.
# Its chart of accounts is open already (the merchant's first disbursement opened it) and the
# officer's permissions are read (an admin request reads them once per request either way).
DISBURSEMENT_QUERIES = [
    "SAVEPOINT",  # pytest-django's test transaction: the service's outer atomic block
    "lock the advance with its facility, read its merchant",
    "its assignments with their debtors (read once for the whole decision)",
    "lock the debtors' bank-wide limits, reading them (kept for the re-check)",
    "lock the merchant's chain",
    # The evidence, re-checked under the chain lock:
    "invoices",
    "receivables and their fingerprint twins",
    "live assignments holding one of the refs or fingerprints",
    "orders",
    "shipments and invoices of the orders (one statement)",
    "blacklisted?",
    "debtor exposure",
    "receivable.assigned entries of the chain",
    # The approval:
    "advances of the merchant in the checker's 24-hour window",
    # The disbursement:
    "UPDATE the advance",
    "UPDATE its assignments held -> assigned",
    "the chart's accounts",
    "journal entry, postings and balances (one statement)",
    "INSERT the payment with the merchant's payout account, unless its cause has one",
    # entries_append, no savepoint (nothing projects these entries), on the head the first
    # disbursement left (ledger/locks.py, head_known): no lock statement of its own.
    "INSERT the chain entries unless their keys were used before, move the head if the chain"
    " still ends where this process left it (one statement)",
    "the merchant's seller id at the marketplace (the notice names it)",
    "INSERT the notices",
    "RELEASE SAVEPOINT",  # the outer atomic block again
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

    with CaptureQueriesContext(connection) as queries:
        disbursed = advance_approve(advance=second, officer=officer, now=now)

    assert disbursed.status == Advance.Status.DISBURSED
    sql = "\n".join(q["sql"][:160] for q in queries.captured_queries)
    assert len(queries) == len(DISBURSEMENT_QUERIES), sql
