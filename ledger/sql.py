"""Small pieces of SQL shared by the hand-written statements and reads."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model

_M = TypeVar("_M", bound=Model)
_T = TypeVar("_T")
_Converter = Callable[[Any, Any, Any], Any]
Rows = list[tuple[Any, ...]]


@contextmanager
def one_round_trip() -> Iterator[None]:
    """Send the statements run inside to PostgreSQL together and take their answers together
    (libpq's pipeline mode): one round trip instead of one per statement. Each statement still
    runs on its own, in order, as it would one after the other.

    For reads whose parameters do not depend on each other's rows, run through ``rows_later``
    or ``models_read_later``, whose rows are fetched after the block. Elsewhere than
    PostgreSQL the statements run one by one, as they are sent.
    """
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    # A statement's error comes back when the block ends, as Django's error like any other.
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield


@contextmanager
def generic_plans() -> Iterator[None]:
    """Have PostgreSQL run the prepared statements executed inside on their generic plans, in
    one round trip with them; elsewhere, or outside a transaction, do nothing.

    PostgreSQL plans a prepared statement anew at every execution when it estimates that a
    plan made for the values given beats the generic one. For the chain's write of a few
    entries that estimate is a coin toss (unnest() of an array parameter counts as ten rows),
    and planning it costs more than running it: ~0.35 ms of a disbursement's write.

    Local to the transaction: the setting before the block comes back after it, and a failed
    statement takes the change with it when its transaction or savepoint rolls back.
    """
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        yield
        return
    with one_round_trip(), connection.cursor() as cursor:
        cursor.execute(_GENERIC_PLANS_ON)
        yield
        cursor.execute(_GENERIC_PLANS_OFF)


_GENERIC_PLANS_ON = (
    "SELECT set_config('chainfin.plan_cache_mode', current_setting('plan_cache_mode'), true),"
    " set_config('plan_cache_mode', 'force_generic_plan', true)"
)
_GENERIC_PLANS_OFF = (
    "SELECT set_config('plan_cache_mode', current_setting('chainfin.plan_cache_mode'), true)"
)


def rows_later(sql: str, params: Sequence[Any]) -> Callable[[], Rows]:
    """Run ``sql`` and return what fetches its rows: inside ``one_round_trip``, the rows come
    with the answers of every statement sent with it."""
    return _answer_later(sql, params, lambda cursor: cursor.fetchall())


def rowcount_later(sql: str, params: Sequence[Any]) -> Callable[[], int]:
    """Run ``sql`` (an UPDATE or a DELETE) and return what tells how many rows it touched,
    known once it is answered (inside ``one_round_trip``, with the statements sent with it)."""
    return _answer_later(sql, params, lambda cursor: int(cursor.rowcount))


def _answer_later(sql: str, params: Sequence[Any], answer: Callable[[Any], _T]) -> Callable[[], _T]:
    cursor = connection.cursor()
    try:
        cursor.execute(sql, params)
        if connection.vendor != "postgresql":  # answered already
            with cursor:
                value = answer(cursor)
            return lambda: value
    except BaseException:
        cursor.close()
        raise

    def read() -> _T:
        with cursor:  # closed once read
            return answer(cursor)

    return read


def placeholders(count: int) -> str:
    """``%s, %s, …``: one parameter placeholder per value, for an ``IN (…)`` list or a row."""
    return ", ".join(["%s"] * count)


def literals(values: Sequence[str]) -> str:
    """``'a', 'b'``: code constants (a model's status values) written into the SQL, not passed
    as parameters.

    PostgreSQL plans a prepared statement once for all parameters only if that plan is no
    worse than one made for the values given; a partial index (``WHERE status IN (…)``) can
    serve a condition on constants but not on parameters, so with parameters it plans the
    statement again at every execution (~0.2 ms for the evidence's held read).
    """
    if not all(_CONSTANT.fullmatch(value) for value in values):
        raise ValueError(f"Not a plain constant to write into SQL: {values!r}")
    return ", ".join(f"'{value}'" for value in values)


_CONSTANT = re.compile(r"[a-z_]+")


def models_read(model: type[_M], where: str, params: Sequence[Any]) -> list[_M]:
    """``model``'s rows matching the SQL condition ``where``, loaded as the ORM loads them: every
    concrete column, each value through the converters the ORM would apply (SQLite hands dates,
    decimals and booleans back as text and integers).

    For reads on a hot path: building and compiling the ORM's query for a read like this costs
    about twice what running it does (``financing.eligibility`` makes ten per verdict).
    """
    return models_read_later(model, where, params)()


def models_read_later(model: type[_M], where: str, params: Sequence[Any]) -> Callable[[], list[_M]]:
    """``models_read``, run now and loaded when called: inside ``one_round_trip``, once the
    statements sent with it are answered."""
    table = connection.ops.quote_name(model._meta.db_table)
    read = models_joined_read_later((model,), f"FROM {table} WHERE {where}", params)
    return lambda: [found for (found,) in read()]


def models_joined_read_later(
    models: Sequence[type[Model]], tail: str, params: Sequence[Any]
) -> Callable[[], list[tuple[Any, ...]]]:
    """Read the rows of ``SELECT <the columns of models> <tail>`` now; when called, load one
    instance of each of ``models`` per row, each as ``models_read`` loads it (inside
    ``one_round_trip``, once the statements sent with it are answered). ``tail`` names every
    model's table as it is (``FROM a JOIN b ON … WHERE …``), since the columns are qualified
    by it. Relations between the instances are the caller's to set.
    """
    alias = connection.alias
    parts = [_model_columns(model, alias) for model in models]
    fetch = rows_later(f"SELECT {', '.join(part.columns for part in parts)} {tail}", params)

    def load() -> list[tuple[Any, ...]]:
        loaded = []
        for row in fetch():
            instances, start = [], 0
            for model, part in zip(models, parts, strict=True):
                values = row[start : start + len(part.attnames)]
                start += len(part.attnames)
                if part.converters:
                    values = _converted(values, part.converters)
                instances.append(model.from_db(alias, part.attnames, values))
            loaded.append(tuple(instances))
        return loaded

    return load


def row_update(instance: Model, attnames: Sequence[str]) -> None:
    """Set the columns of ``attnames`` in ``instance``'s row to the instance's values, each
    prepared as the ORM's save prepares it (``get_db_prep_save``), in one plain UPDATE.

    For a row the caller holds locked, on a hot path: the ORM's save of every column cost three
    times the statement. It runs no ``pre_save`` (no ``auto_now``) and sends no signals.
    """
    if not attnames:
        return
    meta = instance._meta
    by_attname = {field.attname: field for field in meta.concrete_fields}
    fields = [by_attname[attname] for attname in attnames]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    values = [f.get_db_prep_save(getattr(instance, f.attname), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} SET {assignments}"  # noqa: S608  (model names)
            f" WHERE {quote(meta.pk.column)} = %s",
            [*values, instance.pk],
        )


@dataclass(frozen=True, slots=True)
class _ModelColumns:
    columns: str  # every concrete column, qualified by the model's table
    attnames: list[str]
    converters: list[tuple[int, Any, list[_Converter]]]  # (position, column, converters)


@cache
def _model_columns(model: type[Model], alias: str) -> _ModelColumns:
    """The columns of ``model``'s concrete fields, their attnames, and per column that needs
    any, (its position, its column expression, its converters) on this connection.

    Once per alias: the converters depend on the backend and the alias's settings (its time
    zone), not on which thread's connection object asked first.
    """
    fields = model._meta.concrete_fields
    table = model._meta.db_table
    quote = connection.ops.quote_name
    converters = []
    for position, field in enumerate(fields):
        column = field.get_col(table)
        found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if found:
            converters.append((position, column, found))
    return _ModelColumns(
        ", ".join(f"{quote(table)}.{quote(field.column)}" for field in fields),
        [field.attname for field in fields],
        converters,
    )


def _converted(
    row: Sequence[Any], converters: list[tuple[int, Any, list[_Converter]]]
) -> tuple[Any, ...]:
    values = list(row)
    for position, column, functions in converters:
        for function in functions:
            values[position] = function(values[position], column, connection)
    return tuple(values)
