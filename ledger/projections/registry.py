"""The projector registry: the one hook through which other apps react to ledger entries.

Projectors run inside the append transaction, so their writes commit or roll back with the
entries. They must be deterministic functions of the entry and the projections before it:
``rebuild_projections`` replays every entry through them and expects the same tables.

Three kinds:

* ``@projector(types)`` functions do their own reads and writes (an update, a state change).
* ``@row_projector(types)`` functions return one unsaved row; rows of a batch are inserted
  together, one statement per table, and the table's unique constraints refuse duplicates.
  When they do, the append is retried "carefully", row by row, to name the offending event.
* ``@batch_projector(types)`` functions take many (entry, data) pairs at once, in append order,
  and must leave what calling them pair by pair would: a pair sees the projections of the
  entries before it, not of those after it (within a chain, a row whose entry has a higher seq
  is after it). They refuse nothing (no ``EventConflict``): they apply facts, so they can run
  once per batch after every entry and row of it is written, a few statements for the batch
  instead of a few per entry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
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


@dataclass
class FastPlan:
    """How a batch is projected when no ``@projector`` applies to it: its new rows, written in
    the statement that writes its entries, then each batch projector once over its pairs."""

    rows: list[models.Model]
    batched: dict[Callable[..., Any], list[tuple[Entry, dict[str, Any]]]]

    def run_batched(self) -> None:
        for function, pairs in self.batched.items():
            function(pairs)


def fast_plan(pairs: Pairs) -> FastPlan | None:
    """The plan for ``pairs`` when only row and batch projectors apply to them, else None."""
    plan = FastPlan(rows=[], batched=defaultdict(list))
    for entry, data in pairs:
        for registered in _projectors.get(entry.type, ()):
            if registered.kind is _Kind.EACH:
                return None
            if registered.kind is _Kind.ROW:
                plan.rows.append(registered.function(entry=entry, data=data))
            else:
                plan.batched[registered.function].append((entry, data))
    return plan


def project(pairs: Sequence[tuple[Entry, dict[str, Any]]], *, careful: bool = False) -> None:
    """Run every registered projector over ``pairs`` of (entry, event data), in order.

    New rows are gathered and inserted per table just before the next projector that reads or
    updates, so every projector sees the rows of the entries before it.

    :raises EventConflict: an event contradicts the projections; its pointer is "/<index>/…".
    :raises ProjectionRowRefused: (``careful=False``) a batched insert hit a unique constraint.
    """
    pending: dict[type[models.Model], list[models.Model]] = defaultdict(list)
    for index, (entry, data) in enumerate(pairs):
        for registered in _projectors.get(entry.type, ()):
            try:
                if registered.kind is _Kind.EACH:
                    _insert(pending)
                    registered.function(entry=entry, data=data)
                elif registered.kind is _Kind.BATCH:
                    _insert(pending)
                    registered.function([(entry, data)])
                elif careful:
                    _insert_one(registered.function(entry=entry, data=data), entry)
                else:
                    row = registered.function(entry=entry, data=data)
                    pending[type(row)].append(row)
            except EventConflict as exc:
                raise exc.prefixed(f"/{index}") from None
    _insert(pending)


def _insert(pending: dict[type[models.Model], list[models.Model]]) -> None:
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
