"""Writing built entries, the moved chain heads and new projection rows.

Appends are the ledger's hot path, and on PostgreSQL their cost is dominated by statements,
not rows: so entries, the new chain heads and the projection rows that depend on nothing but
their entry go in ONE statement (data-modifying CTEs), each table's columns passed as arrays
(``unnest``). The SQL text depends only on which tables are written, never on the batch size,
so the driver parses it once. Other databases take the ORM route to the same rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import cache
from typing import Any

from django.db import IntegrityError, connection, models

from ledger.exceptions import ProjectionRowRefused
from ledger.locks import LockedChain
from ledger.models import Chain, Entry

_Columns = tuple[models.Field[Any, Any], ...]

_HEADS = (
    "new_heads AS (UPDATE ledger_chain AS c SET head_seq = h.seq, head_hash = h.hash"
    " FROM unnest(%s::bigint[], %s::bigint[], %s::varchar[]) AS h (merchant_id, seq, hash)"
    " WHERE c.merchant_id = h.merchant_id)"
)


def entries_write(
    entries: Sequence[Entry], heads: Sequence[LockedChain], rows: Sequence[models.Model] = ()
) -> None:
    """Insert ``entries`` (setting their ids), store ``heads``, and insert ``rows``.

    ``rows`` are new projection rows whose foreign key to an entry of ``entries`` is resolved
    in the database. Must run inside the transaction that holds the chains' locks.

    :raises ProjectionRowRefused: a row repeats a projection's unique key.
    """
    if connection.vendor != "postgresql":
        Entry.objects.bulk_create(entries)
        for chain in heads:
            Chain.objects.filter(pk=chain.merchant_id).update(
                head_seq=chain.head_seq, head_hash=chain.head_hash
            )
        rows_insert(rows)
        return
    insert, columns = _insert_sql(Entry)
    ctes = [f"new_rows AS ({insert} RETURNING id, chain_id, seq)", _HEADS]
    params = _column_arrays(columns, entries)
    params += [[c.merchant_id for c in heads], [c.head_seq for c in heads]]
    params += [[c.head_hash for c in heads]]
    by_model: dict[type[models.Model], list[models.Model]] = defaultdict(list)
    for row in rows:
        by_model[type(row)].append(row)
    for number, (model, model_rows) in enumerate(by_model.items()):
        sql, row_columns, entry_field = _joined_insert_sql(model)
        ctes.append(f"rows_{number} AS ({sql})")
        params += _column_arrays(row_columns, model_rows)
        entries_of = [getattr(row, entry_field.name) for row in model_rows]
        params += [[e.chain_id for e in entries_of], [e.seq for e in entries_of]]
    with connection.cursor() as cursor:
        try:
            cursor.execute(f"WITH {', '.join(ctes)} SELECT id, chain_id, seq FROM new_rows", params)
        except IntegrityError as exc:
            if getattr(getattr(exc.__cause__, "diag", None), "table_name", "") == "ledger_entry":
                raise
            raise ProjectionRowRefused from exc
        ids = {(chain_id, seq): pk for pk, chain_id, seq in cursor.fetchall()}
    for entry in entries:
        entry.pk = ids[(entry.chain_id, entry.seq)]
        entry._state.adding = False


def rows_insert(rows: Sequence[models.Model]) -> None:
    """Insert new rows (of one or more models), one statement per model; ids are not read back.

    :raises ProjectionRowRefused: a row repeats a projection's unique key.
    """
    by_model: dict[type[models.Model], list[models.Model]] = defaultdict(list)
    for row in rows:
        by_model[type(row)].append(row)
    try:
        for model, model_rows in by_model.items():
            if connection.vendor != "postgresql":
                model._default_manager.bulk_create(model_rows)
                continue
            insert, columns = _insert_sql(model)
            with connection.cursor() as cursor:
                cursor.execute(insert, _column_arrays(columns, model_rows))
    except IntegrityError as exc:
        raise ProjectionRowRefused from exc


@cache
def _insert_sql(model: type[models.Model]) -> tuple[str, _Columns]:
    """INSERT … SELECT FROM unnest(<one array per column>) for every column but the id."""
    columns = tuple(f for f in model._meta.concrete_fields if not f.primary_key)
    names = ", ".join(connection.ops.quote_name(f.column) for f in columns)
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in columns)
    table = connection.ops.quote_name(model._meta.db_table)
    return f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})", columns


@cache
def _joined_insert_sql(
    model: type[models.Model],
) -> tuple[str, _Columns, models.Field[Any, Any]]:
    """Like ``_insert_sql``, but the foreign key to Entry comes from the new_rows CTE."""
    columns = [f for f in model._meta.concrete_fields if not f.primary_key]
    entry_field = next(f for f in columns if f.related_model is Entry)
    given = tuple(f for f in columns if f is not entry_field)
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in given)
    aliases = ", ".join(f"c{i}" for i in range(len(given)))
    chosen = ", ".join("e.id" if f is entry_field else f"u.c{given.index(f)}" for f in columns)
    names = ", ".join(connection.ops.quote_name(f.column) for f in columns)
    sql = (
        f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({names})"
        f" SELECT {chosen} FROM unnest({arrays}, %s::bigint[], %s::bigint[])"
        f" AS u ({aliases}, entry_chain, entry_seq)"
        " JOIN new_rows e ON e.chain_id = u.entry_chain AND e.seq = u.entry_seq"
    )
    return sql, given, entry_field


def _column_arrays(columns: Sequence[models.Field[Any, Any]], rows: Sequence[Any]) -> list[Any]:
    return [
        [field.get_db_prep_save(getattr(row, field.attname), connection) for row in rows]
        for field in columns
    ]
