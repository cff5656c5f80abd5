"""Writing built entries, the moved chain heads and new projection rows.

Appends are the ledger's hot path, and on PostgreSQL their cost is dominated by statements,
not rows: so entries, the new chain heads and the projection rows that depend on nothing but
their entry go in ONE statement (data-modifying CTEs), each table's columns passed as arrays
(``unnest``). The SQL text depends only on which tables are written and on whether one event or
more is, never on the batch size, so the driver parses it once: a single event's values go as
plain parameters, which the driver sends for a fraction of what working out an array costs. All
go over the wire in PostgreSQL's binary format (%b; the settings bind parameters server-side):
no quoting or escaping of every element, and bodies are JSON, full of quotes. The same
statement first looks for entries that hold the write's idempotency keys and, finding any,
writes nothing and names them: a retried event costs no failed insert, so an append inside a
caller's transaction needs no savepoint to recover from one. Other databases take the ORM
route to the same rows.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper

from ledger.exceptions import EarlierEntry, HeadMoved, KeysUsedBefore, ProjectionRowRefused
from ledger.locks import LockedChain
from ledger.models import Chain, Entry
from ledger.sql import generic_plans, rows_later


@dataclass(frozen=True, slots=True)
class _Column:
    """How one field's values are read from rows and prepared, resolved once per table."""

    attname: str
    prepare: Callable[[Any, BaseDatabaseWrapper], Any]  # the field's get_db_prep_save
    unchanged: type | None  # values of exactly this type need no preparing (_UNCHANGED)

    @classmethod
    def of(cls, fields: Iterable[models.Field[Any, Any]]) -> tuple[_Column, ...]:
        return tuple(cls(f.attname, f.get_db_prep_save, _unchanged_type(f)) for f in fields)


_LENGTH_MODIFIER = re.compile(r"\(\d+\)$")  # varchar(64), not numeric(12, 2)


def _array(db_type: str | None, one: bool) -> str:
    """The placeholder of a column's values: an array, or for a single row, its one value.

    Cast to the type without its length (``varchar``, not ``varchar(64)``): an explicit cast
    to a length cuts a longer value short in silence, where the column refuses it on insert.
    """
    cast = _LENGTH_MODIFIER.sub("", db_type or "")
    return f"ARRAY[%b::{cast}]" if one else f"%b::{cast}[]"


@cache
def _heads_sql(one: bool, compared: bool) -> str:
    """Move the heads; ``compared``: only if the one chain still ends where its entries were
    built on, and its merchant is as read then (parameters after the arrays: the seq, the hash,
    the public id, the tax id and the country built on). Under READ COMMITTED an UPDATE that
    waited for another writer's lock compares against the row that writer left."""
    arrays = ", ".join(_array(db_type, one) for db_type in ("bigint", "bigint", "varchar"))
    compare = (
        " AND c.head_seq = %b::bigint AND c.head_hash = %b::varchar AND EXISTS (SELECT FROM"
        " merchants_merchant m WHERE m.id = c.merchant_id AND m.public_id = %b::varchar AND"
        " m.tax_id_normalised = %b::varchar AND m.country = %b::varchar) RETURNING c.merchant_id"
        if compared
        else ""
    )
    return (
        "new_heads AS (UPDATE ledger_chain AS c SET head_seq = h.seq, head_hash = h.hash"
        f" FROM unnest({arrays}) AS h (merchant_id, seq, hash)"
        f" WHERE c.merchant_id = h.merchant_id AND NOT EXISTS (SELECT FROM earlier){compare})"
    )


# Compared, when the head did not move (and no key was found): the chain's head as it stands,
# locked, as chains_lock reads it (parameter: the merchant id). FOR UPDATE under READ COMMITTED
# waits for another writer's lock and returns the row that writer left.
_FRESH_HEAD = (
    "fresh AS (SELECT c.merchant_id, m.public_id, c.head_seq, c.head_hash, m.tax_id_normalised,"
    " m.country FROM ledger_chain c JOIN merchants_merchant m ON m.id = c.merchant_id"
    " WHERE c.merchant_id = %b::bigint AND NOT EXISTS (SELECT FROM earlier)"
    " AND NOT EXISTS (SELECT FROM new_heads) FOR UPDATE OF c)"
)


@cache
def _earlier_sql(one: bool) -> str:
    """The entries that hold a key of the write already, with what their receipts need.

    Parameters: the key (or the keys), then the source. One probe of the unique index per key,
    whatever the planner believes of the table's size (a prepared statement keeps its plan):
    equalities on both its columns in a subquery per key (LIMIT keeps it apart), never
    ``= ANY(keys)``, which a plan may answer by reading every entry of the source.
    """
    keys = "(SELECT %b::varchar AS key) AS k" if one else "unnest(%b::varchar[]) AS k (key)"
    return (
        "earlier AS (SELECT e.idempotency_key, e.request_hash, m.public_id, e.seq, e.hash,"
        f" e.external_ref, e.type FROM {keys} CROSS JOIN LATERAL (SELECT * FROM ledger_entry"
        " WHERE idempotency_key = k.key AND source = %b::varchar LIMIT 1) AS e"
        " JOIN merchants_merchant m ON m.id = e.chain_id)"
    )


# New entries' ids, then the earlier entries (their id and chain are NULL): one result, one
# statement; compared, then the fresh head (its id NULL, its chain not).
_RESULT = (
    " SELECT id, chain_id, seq, NULL, NULL, NULL, NULL, NULL, NULL FROM new_rows"
    " UNION ALL SELECT NULL, NULL, seq, idempotency_key, request_hash, public_id, hash,"
    " external_ref, type FROM earlier"
)
_RESULT_COMPARED = (
    f"{_RESULT} UNION ALL SELECT NULL, merchant_id, head_seq, public_id, tax_id_normalised,"
    " country, head_hash, NULL, NULL FROM fresh"
)


# The rows PostgreSQL's generic plan counts for unnest() of an array parameter (the planner's
# estimate_array_length for a value it cannot see).
_ROWS_GUESSED = 10


def entries_write(
    entries: Sequence[Entry],
    heads: Sequence[LockedChain],
    rows: Sequence[models.Model] = (),
    *,
    built_on: LockedChain | None = None,
) -> None:
    """Insert ``entries`` (setting their ids), store ``heads``, and insert ``rows``; or, when
    entries hold some of their idempotency keys already, write nothing and say which.

    ``entries`` come from one source. ``rows`` are new projection rows whose foreign key to an
    entry of ``entries`` is resolved in the database. Must run inside the transaction that
    holds the chains' locks: a key seen by then on the same chain cannot appear later, so
    finding it is exact and needs no failed insert (hence no savepoint) to learn of it.

    ``built_on`` (PostgreSQL, one chain; no lock needed): the head and merchant the entries
    were built on. The statement then moves the head only if the chain still ends there, which
    takes its lock, and inserts only if it did; if the chain had moved on, it writes nothing,
    locks the chain and raises HeadMoved with the head as it stands. A key found by the
    statement is then exact too: an append that wrote it on this chain since would have moved
    the head.

    :raises KeysUsedBefore: nothing was written; the entries that hold the keys.
    :raises HeadMoved: (``built_on``) nothing was written; the chain's head, locked.
    :raises ProjectionRowRefused: a row repeats a projection's unique key.
    """
    if not entries:
        return
    source, keys = entries[0].source, [entry.idempotency_key for entry in entries]
    if connection.vendor != "postgresql":
        _earlier_refuse(_earlier_orm(source, keys))
        Entry.objects.bulk_create(entries)
        for chain in heads:
            Chain.objects.filter(pk=chain.merchant_id).update(
                head_seq=chain.head_seq, head_hash=chain.head_hash
            )
        rows_insert(rows)
        return
    by_model = _by_table(rows)
    # One event, one head, a row per table (a single append): plain values, not arrays.
    one = len(entries) == len(heads) == 1 and all(len(rs) == 1 for rs in by_model.values())
    insert, columns = _insert_sql(Entry, one)
    compared = built_on is not None
    # Compared, the entries wait on the moved head (so on its lock): the heads come first.
    heads_cte = _heads_sql(one, compared)
    inserted = "EXISTS (SELECT FROM new_heads)" if compared else "NOT EXISTS (SELECT FROM earlier)"
    rows_cte = f"new_rows AS ({insert} WHERE {inserted} RETURNING id, chain_id, seq)"
    ctes = [_earlier_sql(one), *((heads_cte, rows_cte) if compared else (rows_cte, heads_cte))]
    entry_arrays = _column_arrays(columns, entries)
    head_arrays: list[list[Any]] = [[c.merchant_id for c in heads], [c.head_seq for c in heads]]
    head_arrays.append([c.head_hash for c in heads])
    arrays = [keys, *((head_arrays + entry_arrays) if compared else (entry_arrays + head_arrays))]
    for number, (model, model_rows) in enumerate(by_model.items()):
        sql, row_columns, entry_field = _joined_insert_sql(model, one)
        ctes.append(f"rows_{number} AS ({sql})")
        arrays += _column_arrays(row_columns, model_rows)
        if not one:
            entries_of = [getattr(row, entry_field.name) for row in model_rows]
            arrays += [[e.chain_id for e in entries_of], [e.seq for e in entries_of]]
    if one:
        arrays = [values[0] for values in arrays]
    params = [arrays[0], source, *arrays[1:]]  # the keys, then the source they are under
    result_sql = _RESULT
    if built_on is not None:  # its values follow the heads' arrays in the SQL
        at = 2 + len(head_arrays)
        params[at:at] = [
            built_on.head_seq,
            built_on.head_hash,
            built_on.public_id,
            built_on.tax_id_normalised,
            built_on.country,
        ]
        ctes.append(_FRESH_HEAD)
        params.append(built_on.merchant_id)
        result_sql = _RESULT_COMPARED
    with connection.cursor() as cursor:
        try:
            # A single append's statement takes no arrays, and a batch's arrays hold more rows
            # than the generic plan guesses: PostgreSQL plans either generically by itself.
            with generic_plans() if not one and len(entries) < _ROWS_GUESSED else nullcontext():
                cursor.execute(f"WITH {', '.join(ctes)}{result_sql}", params)
        except IntegrityError as exc:
            if getattr(getattr(exc.__cause__, "diag", None), "table_name", "") == "ledger_entry":
                raise
            raise ProjectionRowRefused from exc
        result = cursor.fetchall()
    _earlier_refuse([EarlierEntry(*row[2:]) for row in result if row[0] is row[1] is None])
    if built_on is not None and not any(row[0] is not None for row in result):
        fresh = [LockedChain(row[1], row[3], row[2], row[6], row[4], row[5]) for row in result]
        raise HeadMoved(fresh[0] if fresh else None)
    ids = {(chain_id, seq): pk for pk, chain_id, seq, *_ in result}
    for entry in entries:
        entry.pk = ids[(entry.chain_id, entry.seq)]
        entry._state.adding = False


def _earlier_orm(source: str, keys: list[str]) -> list[EarlierEntry]:
    found = Entry.objects.filter(source=source, idempotency_key__in=keys).values_list(
        "seq",
        "idempotency_key",
        "request_hash",
        "chain__merchant__public_id",
        "hash",
        "external_ref",
        "type",
    )
    return [EarlierEntry(*row) for row in found]


def _earlier_refuse(earlier: list[EarlierEntry]) -> None:
    if earlier:
        raise KeysUsedBefore(earlier)


def rows_insert(rows: Sequence[models.Model]) -> None:
    """Insert new rows (of one or more models) in one statement; ids are not read back.

    :raises ProjectionRowRefused: a row repeats a projection's unique key.
    """
    by_model = _by_table(rows)
    try:
        if connection.vendor != "postgresql":
            for model, model_rows in by_model.items():
                model._default_manager.bulk_create(model_rows)
            return
        if not by_model:
            return
        # A batch flushes rows before each projector that reads: every table in one round trip.
        one = all(len(model_rows) == 1 for model_rows in by_model.values())
        inserts, params = [], []
        for model, model_rows in by_model.items():
            insert, columns = _insert_sql(model, one)
            inserts.append(insert)
            params += _column_arrays(columns, model_rows)
        if one:
            params = [values[0] for values in params]
        ctes = ", ".join(f"rows_{n} AS ({insert})" for n, insert in enumerate(inserts[:-1]))
        with connection.cursor() as cursor:
            cursor.execute(f"WITH {ctes} {inserts[-1]}" if ctes else inserts[-1], params)
    except IntegrityError as exc:
        raise ProjectionRowRefused from exc


def _by_table(rows: Sequence[models.Model]) -> dict[type[models.Model], list[models.Model]]:
    """``rows`` by model, in the order of their tables' names, each model's in their own order.

    Not in the order the models first appear: a batch's statement text then depends on which
    tables it writes, not on the order its events came in, so PostgreSQL gets a few texts to
    prepare once and reuse instead of one per ordering, each planned afresh.
    """
    by_model: dict[type[models.Model], list[models.Model]] = defaultdict(list)
    for row in rows:
        by_model[type(row)].append(row)
    return dict(sorted(by_model.items(), key=lambda item: item[0]._meta.db_table))


def rows_insert_returning(rows: Sequence[models.Model]) -> None:
    """Insert new rows of one model in one statement and give each its primary key (the ORM's
    ``bulk_create`` where not PostgreSQL): for many rows, without Django's preparation of
    every field of every row, which cost more than the database's work.

    A database refusal (a unique or check constraint) is raised as Django raises it.
    """
    rows_insert_returning_later(rows)()


def rows_insert_returning_later(rows: Sequence[models.Model]) -> Callable[[], None]:
    """``rows_insert_returning``, its INSERT sent now, and what gives the rows their keys:
    inside ``ledger.sql.one_round_trip``, in the round trip of the statements sent with it."""
    if not rows:
        return lambda: None
    model = type(rows[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(rows)
        return lambda: None
    insert, columns = _insert_sql(model, False)
    pk = connection.ops.quote_name(model._meta.pk.column)
    # RETURNING gives the ids in the order of the arrays, as bulk_create relies on too.
    read = rows_later(f"{insert} RETURNING {pk}", _column_arrays(columns, rows))

    def load() -> None:
        for row, (pk_value,) in zip(rows, read(), strict=True):
            row.pk = pk_value
            row._state.adding = False
            row._state.db = connection.alias

    return load


@cache
def _insert_sql(model: type[models.Model], one: bool) -> tuple[str, tuple[_Column, ...]]:
    """INSERT … SELECT FROM unnest(<one array per column>) for every column but the id; with
    ``one``, each array is made in the database from a single value."""
    columns = tuple(f for f in model._meta.concrete_fields if not f.primary_key)
    names = ", ".join(connection.ops.quote_name(f.column) for f in columns)
    arrays = ", ".join(_array(f.db_type(connection), one) for f in columns)
    table = connection.ops.quote_name(model._meta.db_table)
    return f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})", _Column.of(columns)


@cache
def _joined_insert_sql(
    model: type[models.Model], one: bool
) -> tuple[str, tuple[_Column, ...], models.Field[Any, Any]]:
    """Like ``_insert_sql``, but the foreign key to Entry comes from the new_rows CTE: each row
    names its entry by (chain, seq), two more arrays; with ``one``, new_rows holds the one entry
    (or none, if nothing is written), so the row takes it without naming it."""
    columns = [f for f in model._meta.concrete_fields if not f.primary_key]
    entry_field = next(f for f in columns if f.related_model is Entry)
    given = tuple(f for f in columns if f is not entry_field)
    arrays = ", ".join(_array(f.db_type(connection), one) for f in given)
    aliases = ", ".join(f"c{i}" for i in range(len(given)))
    chosen = ", ".join("e.id" if f is entry_field else f"u.c{given.index(f)}" for f in columns)
    names = ", ".join(connection.ops.quote_name(f.column) for f in columns)
    if one:
        rows = f"unnest({arrays}) AS u ({aliases}) CROSS JOIN new_rows e"
    else:
        keys = _array("bigint", one=False)
        rows = (
            f"unnest({arrays}, {keys}, {keys}) AS u ({aliases}, entry_chain, entry_seq)"
            " JOIN new_rows e ON e.chain_id = u.entry_chain AND e.seq = u.entry_seq"
        )
    table = connection.ops.quote_name(model._meta.db_table)
    return (
        f"INSERT INTO {table} ({names}) SELECT {chosen} FROM {rows}",
        _Column.of(given),
        entry_field,
    )


def _column_arrays(columns: Sequence[_Column], rows: Sequence[Any]) -> list[Any]:
    db = connections[DEFAULT_DB_ALIAS]  # once, not through the proxy for every value
    return [
        _values(column, [getattr(row, column.attname) for row in rows], db) for column in columns
    ]


def _values(column: _Column, values: list[Any], db: BaseDatabaseWrapper) -> list[Any]:
    prepare, kind = column.prepare, column.unchanged
    if kind is datetime:
        return [
            v if type(v) is datetime and v.utcoffset() is not None else prepare(v, db)
            for v in values
        ]
    if kind is not None:
        return [v if type(v) is kind else prepare(v, db) for v in values]
    return [prepare(v, db) for v in values]


# Fields whose ``get_db_prep_save`` returns values of these exact types unchanged on PostgreSQL
# (the array's cast in the SQL gives them their type), so the per-value call can be skipped.
_UNCHANGED: dict[type[models.Field[Any, Any]], type] = {
    models.CharField: str,
    models.BigIntegerField: int,
    models.BigAutoField: int,
    models.DateField: date,
    models.DateTimeField: datetime,  # aware ones only: a naive one is made aware, with a warning
    models.BinaryField: bytes,
}
_FOREIGN_KEYS = (models.ForeignKey, models.OneToOneField)


def _unchanged_type(field: models.Field[Any, Any]) -> type | None:
    """By exact class: a subclass may prepare its values its own way."""
    while isinstance(field, models.ForeignKey) and type(field) in _FOREIGN_KEYS:
        field = field.target_field  # a foreign key's values are those of the field it points to
    return _UNCHANGED.get(type(field))
