"""Small pieces of SQL shared by the hand-written statements and reads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model

_M = TypeVar("_M", bound=Model)
_Converter = Callable[[Any, Any, Any], Any]


def placeholders(count: int) -> str:
    """``%s, %s, …``: one parameter placeholder per value, for an ``IN (…)`` list or a row."""
    return ", ".join(["%s"] * count)


def models_read(model: type[_M], where: str, params: Sequence[Any]) -> list[_M]:
    """``model``'s rows matching the SQL condition ``where``, loaded as the ORM loads them: every
    concrete column, each value through the converters the ORM would apply (SQLite hands dates,
    decimals and booleans back as text and integers).

    For reads on a hot path: building and compiling the ORM's query for a read like this costs
    about twice what running it does (``financing.eligibility`` makes ten per verdict).
    """
    select, attnames, converters = _model_select(model, connection.alias)
    with connection.cursor() as cursor:
        cursor.execute(f"{select} WHERE {where}", params)
        rows = cursor.fetchall()
    if converters:
        rows = [_converted(row, converters) for row in rows]
    return [model.from_db(connection.alias, attnames, row) for row in rows]


@cache
def _model_select(
    model: type[Model], alias: str
) -> tuple[str, list[str], list[tuple[int, Any, list[_Converter]]]]:
    """The SELECT of every concrete column of ``model``, their attnames, and per column that
    needs any, (its position, its column expression, its converters) on this connection.

    Once per alias: the converters depend on the backend and the alias's settings (its time
    zone), not on which thread's connection object asked first.
    """
    fields = model._meta.concrete_fields
    table = model._meta.db_table
    quote = connection.ops.quote_name
    columns = ", ".join(f"{quote(table)}.{quote(field.column)}" for field in fields)
    converters = []
    for position, field in enumerate(fields):
        column = field.get_col(table)
        found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if found:
            converters.append((position, column, found))
    select = f"SELECT {columns} FROM {quote(table)}"  # noqa: S608  (the model's own names)
    return select, [field.attname for field in fields], converters


def _converted(
    row: Sequence[Any], converters: list[tuple[int, Any, list[_Converter]]]
) -> tuple[Any, ...]:
    values = list(row)
    for position, column, functions in converters:
        for function in functions:
            values[position] = function(values[position], column, connection)
    return tuple(values)
