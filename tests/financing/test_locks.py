"""The row locks of financing: each use case takes its lock first, through ``financing.locks``."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from financing.models import Facility
from financing.services.decisions import advance_approve
from financing.services.requests import advance_request
from tests.financing.conftest import Trade

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def locking(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].endswith("FOR UPDATE")]


def test_a_request_locks_its_facilities_in_id_order(
    trade: Trade, facility: Facility, now: datetime
) -> None:
    refs = trade.fundable(1)

    with CaptureQueriesContext(connection) as queries:
        advance_request(merchant=trade.merchant, refs=refs, request_key="k", now=now)

    [lock] = locking(queries)
    assert lock.startswith('SELECT "financing_facility".')
    assert 'ORDER BY "financing_facility"."id" ASC FOR UPDATE' in lock


def test_an_approval_locks_the_advance_with_its_facility_before_anything_else(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    refs = trade.fundable(1)
    advance = advance_request(merchant=trade.merchant, refs=refs, request_key="k", now=now)

    with CaptureQueriesContext(connection) as queries:
        advance_approve(advance=advance, officer=officer, now=now)

    first = next(q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"])
    assert first.startswith('SELECT "financing_advance".')
    assert 'JOIN "financing_facility"' in first
    assert first.endswith('FOR UPDATE OF "financing_advance", "financing_facility"')


def test_an_approval_locks_the_merchants_chain_before_it_reads_the_evidence(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    """Issue 8, item 4: advance, then chain, then the books' accounts; evidence read under it."""
    refs = trade.fundable(1)
    advance = advance_request(merchant=trade.merchant, refs=refs, request_key="k", now=now)

    with CaptureQueriesContext(connection) as queries:
        advance_approve(advance=advance, officer=officer, now=now)

    sql = [q["sql"] for q in queries.captured_queries]
    chain = next(i for i, q in enumerate(sql) if "FROM ledger_chain" in q and "FOR UPDATE" in q)
    evidence = next(i for i, q in enumerate(sql) if 'FROM "ledger_invoice"' in q)
    accounts = next(i for i, q in enumerate(sql) if "FROM books_account" in q and "FOR UPDATE" in q)
    assert chain < evidence < accounts
