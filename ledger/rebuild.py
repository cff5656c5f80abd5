"""Rebuild the read models from the chains, and say what changed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.db import models, transaction

from ledger.locks import chain_qs_for_update
from ledger.models import Chain, Entry
from ledger.projections.registry import project, projection_models

_BATCH = 2000
_Snapshot = dict[tuple[str, Any], dict[str, Any]]


@dataclass
class RebuildReport:
    entries: int = 0
    rows: int = 0
    differences: list[str] = field(default_factory=list)


def projections_rebuild(
    *, dry_run: bool = False, on_progress: Callable[[int], None] | None = None
) -> RebuildReport:
    """Empty every projection, replay every entry through the projectors, report the difference.

    Holds every chain lock for the duration, so no append interleaves with the replay.
    With ``dry_run`` the rebuild is rolled back and only the report remains.
    """
    report = RebuildReport()
    with transaction.atomic():
        list(chain_qs_for_update(Chain.objects.values_list("merchant_id", flat=True)))
        before = _snapshot()
        for model in reversed(projection_models()):
            model._default_manager.all().delete()
        batch: list[tuple[Entry, dict[str, Any]]] = []
        for entry in Entry.objects.order_by("chain_id", "seq").iterator(chunk_size=_BATCH):
            batch.append((entry, orjson.loads(bytes(entry.body))["data"]))
            if len(batch) == _BATCH:
                _replay(batch, report, on_progress)
        _replay(batch, report, on_progress)
        after = _snapshot()
        report.rows = len(after)
        report.differences = _differences(before, after)
        if dry_run:
            transaction.set_rollback(True)
    return report


def _replay(
    batch: list[tuple[Entry, dict[str, Any]]],
    report: RebuildReport,
    on_progress: Callable[[int], None] | None,
) -> None:
    # Entries were accepted once, so their projections cannot conflict; careful mode would
    # only be needed to name an event, and there is none to name.
    project(batch)
    report.entries += len(batch)
    batch.clear()
    if on_progress is not None:
        on_progress(report.entries)


def _natural_key(model: type[models.Model], row: dict[str, Any]) -> tuple[str, Any]:
    key_fields = [f for f in ("merchant_id", "ref") if f in row] or ["id"]
    return model._meta.label, tuple(row[f] for f in key_fields)


def _snapshot() -> _Snapshot:
    rows: _Snapshot = {}
    for model in projection_models():
        for row in model._default_manager.values().iterator():
            row.pop("id", None)
            rows[_natural_key(model, row)] = row
    return rows


def _differences(before: _Snapshot, after: _Snapshot) -> list[str]:
    differences = []
    for key in sorted(before.keys() | after.keys(), key=repr):
        label, natural = key
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if old is None:
            differences.append(f"{label} {natural}: missing before the rebuild, now present")
        elif new is None:
            differences.append(f"{label} {natural}: present before, not derivable from the chain")
        else:
            changed = ", ".join(
                f"{name} {old[name]!r} -> {new[name]!r}" for name in old if old[name] != new[name]
            )
            differences.append(f"{label} {natural}: {changed}")
    return differences
