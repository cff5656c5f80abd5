"""The projector registry: the one hook through which other apps react to ledger entries.

A projector runs inside the append transaction, so its writes commit or roll back with the
entry. Projectors must be deterministic functions of the entry and the projections before it:
``rebuild_projections`` replays every entry through them and expects the same tables.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

from django.db import models

from ledger.models import Entry


class Projector(Protocol):
    def __call__(self, *, entry: Entry, data: dict[str, Any]) -> None: ...


_projectors: dict[str, list[Projector]] = defaultdict(list)
_models: list[type[models.Model]] = []


def projector(*event_types: str) -> Callable[[Projector], Projector]:
    """Register the decorated function to run for every new entry of ``event_types``."""

    def register(function: Projector) -> Projector:
        for event_type in event_types:
            if function not in _projectors[event_type]:
                _projectors[event_type].append(function)
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


def project(*, entry: Entry, data: dict[str, Any]) -> None:
    """Run every projector registered for ``entry.type``."""
    for function in _projectors.get(entry.type, ()):
        function(entry=entry, data=data)
