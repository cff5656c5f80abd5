"""Writing built entries, the moved chain heads and new projection rows.

Appends are the ledger's hot path, and on PostgreSQL the cost of a batch is dominated by
statements, not rows: so the entries and the new chain heads go in one statement, and rows of
one table in one more, each passing its columns as arrays (``unnest``). The SQL text is the same
for any batch size, so the driver parses it once. Other databases take the ORM route.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from django.db import connection, models

from ledger.models import Chain, Entry

_HEADS = (
    "new_heads AS (UPDATE ledger_chain AS c SET head_seq = h.seq, head_hash = h.hash"
    " FROM unnest(%s::bigint[], %s::bigint[], %s::varchar[]) AS h (merchant_id, seq, hash)"
    " WHERE c.merchant_id = h.merchant_id)"
)


def entries_write(entries: Sequence[Entry], heads: Sequence[Chain]) -> None:
    """Insert ``entries`` (setting their ids) and store the head of each chain in ``heads``.

    Must run inside the transaction that holds the chains' locks.
    """
    if connection.vendor != "postgresql":
        Entry.objects.bulk_create(entries)
        for chain in heads:
            Chain.objects.filter(pk=chain.pk).update(
                head_seq=chain.head_seq, head_hash=chain.head_hash
            )
        return
    insert, columns = _insert_sql(Entry)
    sql = f"WITH new_rows AS ({insert} RETURNING id, chain_id, seq), {_HEADS}"
    sql += " SELECT id, chain_id, seq FROM new_rows"
    params = _column_arrays(columns, entries)
    params += [[c.pk for c in heads], [c.head_seq for c in heads], [c.head_hash for c in heads]]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = {(chain_id, seq): pk for pk, chain_id, seq in cursor.fetchall()}
    for entry in entries:
        entry.pk = ids[(entry.chain_id, entry.seq)]
        entry._state.adding = False


def rows_insert(rows: Sequence[models.Model]) -> None:
    """Insert new rows of one model in one statement (ids are not read back)."""
    if not rows:
        return
    model = type(rows[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(rows)
        return
    insert, columns = _insert_sql(model)
    with connection.cursor() as cursor:
        cursor.execute(insert, _column_arrays(columns, rows))


@cache
def _insert_sql(model: type[models.Model]) -> tuple[str, tuple[models.Field[Any, Any], ...]]:
    """INSERT … SELECT FROM unnest(<one array per column>) for every column but the id."""
    columns = tuple(f for f in model._meta.concrete_fields if not f.primary_key)
    names = ", ".join(connection.ops.quote_name(f.column) for f in columns)
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in columns)
    table = connection.ops.quote_name(model._meta.db_table)
    return f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})", columns


def _column_arrays(columns: Sequence[models.Field[Any, Any]], rows: Sequence[Any]) -> list[Any]:
    return [
        [field.get_db_prep_save(getattr(row, field.attname), connection) for row in rows]
        for field in columns
    ]
