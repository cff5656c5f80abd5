"""Reading a merchant's chain for the receivable.assigned entries of some invoices.

An assignment entry's ref is "<invoice ref>@<advance ref>" (or "sha256-<hex>@<advance ref>" for
an invoice ref too long for that, ``assignment_entry_ref``); advance refs hold no '@'. On
PostgreSQL the entries are found by what their ref says before its last '@', through an index
of the assignment entries alone (migration 0016), so the read costs the same however long the
merchant's chain has grown.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from django.db import connection

from ledger.models import Entry
from ledger.sql import rows_later

ASSIGNED = "receivable.assigned"

# Literals, not parameters: a prepared statement's generic plan uses the partial expression
# index only when its text says what the index says (type = ..., the '@').
_BY_INVOICE = """
    SELECT external_ref FROM ledger_entry
    WHERE chain_id = %s AND type = 'receivable.assigned'
      AND left(external_ref, length(external_ref) - strpos(reverse(external_ref), '@')) = ANY(%s)
    ORDER BY seq
"""


def assignment_refs_later(
    *, merchant_id: int, invoice_parts: Collection[str]
) -> Callable[[], list[str]]:
    """Read the refs of the merchant's receivable.assigned entries, in chain order, that may
    name one of ``invoice_parts`` (what an assignment ref says before its last '@'); they are
    loaded when called (``ledger.sql.one_round_trip``).

    Elsewhere than PostgreSQL (the SQLite demo, short chains) every assignment entry of the
    chain comes back: the caller matches each ref in full either way.
    """
    if not invoice_parts:
        return list
    if connection.vendor == "postgresql":
        return _by_invoice_later(merchant_id, invoice_parts)
    refs = _whole_chain(merchant_id)
    return lambda: refs


def _by_invoice_later(merchant_id: int, invoice_parts: Collection[str]) -> Callable[[], list[str]]:
    read = rows_later(_BY_INVOICE, [merchant_id, list(invoice_parts)])
    return lambda: [ref for (ref,) in read()]


def _whole_chain(merchant_id: int) -> list[str]:
    entries = Entry.objects.filter(chain_id=merchant_id, type=ASSIGNED).order_by("seq")
    return list(entries.values_list("external_ref", flat=True))
