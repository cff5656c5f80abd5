"""The projector registry: the one hook through which other apps react to ledger entries.

Projectors run inside the append transaction, so their writes commit or roll back with the
entries. They must be deterministic functions of the entry and the projections before it:
``rebuild_projections`` replays every entry through them and expects the same tables.

Three kinds:

* ``@projector(types)`` functions do their own reads and writes (an update, a state change).
* ``@row_projector(types)`` functions return one unsaved row; rows of a batch are inserted
  together (with their entries, when nothing reads them first), and the tables' unique
  constraints refuse duplicates. When they do, the append is retried "carefully", row by row,
  to name the offending event.
* ``@batch_projector(types)`` functions take many (entry, data) pairs at once, in append order,
  and must leave what calling them pair by pair would: a pair sees the projections of the
  entries before it, not of those after it (within a chain, a row whose entry has a higher seq
  is after it). They refuse nothing (no ``EventConflict``): they apply facts, so in a batch no
  ``@projector`` touches they run once, after every entry and row of it is written, a few
  statements for the batch instead of a few per entry; otherwise pair by pair, in order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from django.db import IntegrityError, models, transaction

from ledger.exceptions import EventConflict
from ledger.models import Entry
from ledger.writer import rows_insert


class Projector(Protocol):
    def __call__(self, *, entry: Entry, data: dict[str, Any]) -> None: ...


class RowProjector(Protocol):
    def __call__(self, *, entry: Entry, data: dict[str, Any]) -> models.Model: ...


Pairs = Sequence[tuple[Entry, dict[str, Any]]]


class BatchProjector(Protocol):
    def __call__(self, pairs: Pairs) -> None: ...


class _Kind(Enum):
    EACH = "each"
    ROW = "row"
    BATCH = "batch"


@dataclass(frozen=True)
class _Registered:
    function: Callable[..., Any]
    kind: _Kind


_projectors: dict[str, list[_Registered]] = defaultdict(list)
_models: list[type[models.Model]] = []


def _register(event_types: Sequence[str], registered: _Registered) -> None:
    for event_type in event_types:
        if registered not in _projectors[event_type]:
            _projectors[event_type].append(registered)


def projector(*event_types: str) -> Callable[[Projector], Projector]:
    """Register the decorated function to run for every new entry of ``event_types``."""

    def register(function: Projector) -> Projector:
        _register(event_types, _Registered(function, _Kind.EACH))
        return function

    return register


def row_projector(*event_types: str) -> Callable[[RowProjector], RowProjector]:
    """Register a function that turns each new entry of ``event_types`` into one new row."""

    def register(function: RowProjector) -> RowProjector:
        _register(event_types, _Registered(function, _Kind.ROW))
        return function

    return register


def batch_projector(*event_types: str) -> Callable[[BatchProjector], BatchProjector]:
    """Register a function that projects many new entries of ``event_types`` at once."""

    def register(function: BatchProjector) -> BatchProjector:
        _register(event_types, _Registered(function, _Kind.BATCH))
        return function

    return register


def projection_model(model: type[models.Model]) -> type[models.Model]:
    """Declare ``model`` a projection: emptied and rebuilt by ``rebuild_projections``.

    Register dependants after what they point to; rebuild empties them in reverse order.
    """
    if model not in _models:
        _models.append(model)
    return model


def projection_models() -> list[type[models.Model]]:
    return list(_models)


def projected(event_types: Iterable[str]) -> bool:
    """Whether any projector runs for an event of ``event_types``."""
    return any(_projectors.get(event_type) for event_type in event_types)


def rows_only(event_types: Iterable[str]) -> bool:
    """Whether every projector of ``event_types`` only adds rows: once they are written with
    their entries (``rows_ahead``), nothing is left to run."""
    return all(
        registered.kind is _Kind.ROW
        for event_type in event_types
        for registered in _projectors.get(event_type, ())
    )


def rows_ahead(
    pairs: Sequence[tuple[Entry, dict[str, Any]]],
) -> tuple[list[models.Model], int]:
    """The new rows of the leading ``pairs`` that no projector reads before they exist, and how
    many pairs those are: every pair up to and including the first with a projector that reads
    or updates (an entry's rows come before its other projectors, see ``project``); batch
    projectors run after the rows of their whole batch, so they stop nothing here.

    Such rows need nothing from the database, so they can be written in the same statement as
    their entries; ``project(pairs, rows_written=<that many>)`` does the rest.
    """
    rows = []
    for count, (entry, data) in enumerate(pairs, start=1):
        reads = False
        for registered in _projectors.get(entry.type, ()):
            if registered.kind is _Kind.ROW:
                rows.append(registered.function(entry=entry, data=data))
            elif registered.kind is _Kind.EACH:
                reads = True
        if reads:
            return rows, count
    return rows, len(pairs)


def project(
    pairs: Sequence[tuple[Entry, dict[str, Any]]], *, careful: bool = False, rows_written: int = 0
) -> None:
    """Run every registered projector over ``pairs`` of (entry, event data), in order.

    An entry's rows come first, then its projectors that read or update, in the order they
    were registered. New rows are gathered and inserted, all tables in one statement, just
    before the next projector that reads or updates, so every projector sees the rows of its
    entry and of the entries before it, never those of a later one. The rows of the first
    ``rows_written`` pairs are in their tables already (``rows_ahead``).

    :raises EventConflict: an event contradicts the projections; its pointer is "/<index>/…".
    :raises ProjectionRowRefused: (``careful=False``) a batched insert hit a unique constraint.
    """
    pending: dict[type[models.Model], list[models.Model]] = defaultdict(list)
    batches: dict[Callable[..., Any], list[tuple[Entry, dict[str, Any]]]] | None = (
        None if careful or _any_each(pairs) else defaultdict(list)
    )
    for index, (entry, data) in enumerate(pairs):
        projectors = _projectors.get(entry.type, ())
        try:
            if index >= rows_written:
                for row_projector in (p for p in projectors if p.kind is _Kind.ROW):
                    row = row_projector.function(entry=entry, data=data)
                    if careful:
                        _insert_one(row, entry)
                    else:
                        pending[type(row)].append(row)
            for reader in (p for p in projectors if p.kind is not _Kind.ROW):
                if batches is not None:  # only batch projectors: once, after every row
                    batches[reader.function].append((entry, data))
                    continue
                _insert(pending)
                if reader.kind is _Kind.BATCH:
                    reader.function([(entry, data)])
                else:
                    reader.function(entry=entry, data=data)
        except EventConflict as exc:
            raise exc.prefixed(f"/{index}") from None
    _insert(pending)
    for function, batch in (batches or {}).items():
        function(batch)


def _any_each(pairs: Pairs) -> bool:
    return any(p.kind is _Kind.EACH for entry, _ in pairs for p in _projectors.get(entry.type, ()))


def _insert(pending: dict[type[models.Model], list[models.Model]]) -> None:
    if pending:
        rows_insert([row for rows in pending.values() for row in rows])
        pending.clear()


def _insert_one(row: models.Model, entry: Entry) -> None:
    try:
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError:
        label = row._meta.verbose_name
        raise EventConflict(
            "/ref", f"This merchant already has {label} '{entry.external_ref}'."
        ) from None
