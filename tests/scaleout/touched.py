"""What one transaction wrote and locked, read from PostgreSQL itself rather than from the SQL
the code sent (no statement parser to fool, triggers included).

* Tables written: the growth of the transaction's own counters of inserted, updated and deleted
  rows (``pg_stat_xact_user_tables``) across the block.
* Rows written: a row inserted, or the new version of a row updated, carries its writer's
  transaction id in ``xmin``.
* Rows locked: ``pgrowlocks`` lists the locked rows of a table with their lockers' ids and lock
  modes; ``FOR KEY SHARE`` alone is left out, since every foreign key check takes it and it
  blocks no other writer of the row.

Savepoints (every nested ``atomic``) give a transaction further ids, so the block's ids are
fenced by two ids drawn on another connection just before and just after it: PostgreSQL hands
ids out in order, so the block's are the ones between, and only the test's own connection
writes this test database. Rows deleted cannot be seen afterwards: their table is named, not
their merchant.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.apps import apps
from django.db import DatabaseError, connection, connections, transaction

from config.distribution import DISTRIBUTED, WRITTEN_BESIDE

_XID_SPACE = 2**32  # xmin and lockers' ids are 32-bit; the fence is drawn in 64-bit ids
_COUNTERS = """
SELECT relname, n_tup_ins + n_tup_upd + n_tup_del
FROM pg_stat_xact_user_tables WHERE schemaname = 'public'
"""


@dataclass
class Touched:
    """The tables one transaction wrote, and the merchants of the distributed rows it wrote or
    locked (None: a row of no merchant)."""

    tables_written: set[str] = field(default_factory=set)
    merchants_written: dict[str, set[int | None]] = field(default_factory=dict)
    merchants_locked: dict[str, set[int | None]] = field(default_factory=dict)
    locks_seen: bool = False

    def merchants(self) -> set[int | None]:
        every = [*self.merchants_written.values(), *self.merchants_locked.values()]
        return set().union(*every)

    def problems(self) -> list[str]:
        """What keeps this transaction from being one merchant's: tables written that are not
        distributed by merchant (nor allowed beside), and rows of more than one merchant."""
        found = [
            f"wrote {table}, which is not distributed by merchant (config/distribution.py)"
            for table in sorted(self.tables_written - DISTRIBUTED.keys() - WRITTEN_BESIDE.keys())
        ]
        merchants = self.merchants()
        if len(merchants) != 1 or None in merchants:
            rows = {
                f"{how} {table}: {sorted(merchants, key=str)}"
                for how, by_table in (
                    ("wrote", self.merchants_written),
                    ("locked", self.merchants_locked),
                )
                for table, merchants in by_table.items()
            }
            found.append(
                f"touched rows of merchants {sorted(merchants, key=str)}, not one merchant's: "
                + "; ".join(sorted(rows))
            )
        return found


@contextmanager
def transaction_touches() -> Iterator[Touched]:
    """Run the block in a transaction of its own (a savepoint in a test's transaction) and fill
    in what it wrote and locked once it is done. PostgreSQL only."""
    touched = Touched(locks_seen=_row_locks_readable())
    tables = _tables()
    fence = connections.create_connection("default")
    try:
        before = _counters()
        low = _next_xid(fence)
        with transaction.atomic():
            yield touched
        high = _next_xid(fence)
    finally:
        fence.close()
    after = _counters()
    touched.tables_written = {t for t, n in after.items() if n != before.get(t, 0)} & tables
    span = high - low - 1  # the ids strictly between the two drawn on the other connection
    for table in sorted(touched.tables_written & DISTRIBUTED.keys()):
        touched.merchants_written[table] = _written(table, (low + 1) % _XID_SPACE, span)
    if touched.locks_seen:
        for table in sorted(DISTRIBUTED):
            locked = _locked(table, (low + 1) % _XID_SPACE, span)
            if locked:
                touched.merchants_locked[table] = locked


def _tables() -> set[str]:
    return {model._meta.db_table for model in apps.get_models(include_auto_created=True)}


def _row_locks_readable() -> bool:
    """Whether pgrowlocks (PostgreSQL's contrib) can be had here; it ships with the server."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pgrowlocks")
    except DatabaseError:
        return False
    return True


def _next_xid(other: object) -> int:
    with other.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")  # autocommit: a new id
        (xid,) = cursor.fetchone()
    return int(xid)


def _counters() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(_COUNTERS)
        return {table: int(n) for table, n in cursor.fetchall()}


def _in_fence(column: str) -> str:
    # Modulo 2^32, so a wraparound of the 32-bit ids between the two fences changes nothing.
    return f"(({column}::text::bigint - %s) %% {_XID_SPACE} + {_XID_SPACE}) %% {_XID_SPACE} < %s"


def _written(table: str, first: int, span: int) -> set[int | None]:
    column = DISTRIBUTED[table]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT {column} FROM {table} WHERE {_in_fence('xmin')}",
            [first, span],
        )
        return {row[0] for row in cursor.fetchall()}


def _locked(table: str, first: int, span: int) -> set[int | None]:
    column = DISTRIBUTED[table]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT t.{column} FROM {table} t"
            " JOIN pgrowlocks(%s) l ON l.locked_row = t.ctid"
            " WHERE NOT ('For Key Share' = ALL (l.modes))"
            f" AND EXISTS (SELECT FROM unnest(l.xids) AS x WHERE {_in_fence('x')})",
            [table, first, span],
        )
        return {row[0] for row in cursor.fetchall()}
