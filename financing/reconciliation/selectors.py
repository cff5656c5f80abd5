"""Reads over reconciliation: jobs scoped by the caller (a marketplace sees only its own
uploads), and open breaks by age and by kind (officer home, /metrics)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.db.models import Count, Q

from financing.models import Break, ReconJob
from financing.reconciliation.breaks import AGE_BUCKETS
from merchants.models import Marketplace


def recon_job_of_party(
    *, marketplace: Marketplace | None, bank: bool, job_id: int
) -> ReconJob | None:
    """The job ``job_id`` if its file is the caller's: a marketplace's settlement report, or
    for the bank a bank statement import; None for anyone else's or none."""
    if marketplace is not None:
        return ReconJob.objects.filter(pk=job_id, marketplace=marketplace).first()
    if bank:
        return ReconJob.objects.filter(pk=job_id, kind=ReconJob.Kind.BANK_STATEMENT).first()
    return None


def recon_job_progress(job: ReconJob) -> dict[str, Any]:
    """A job as the admin's progress bar and ``GET /api/v1/jobs/{id}`` show it."""
    total = job.lines_total
    return {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "file_name": job.file_name,
        "file_sha256": job.file_sha256,
        "format": job.file_format or None,
        "lines_total": total,
        "lines_done": job.lines_done,
        # Whole percent, floored: 100 only once every line is done.
        "percent": (job.lines_done * 100 // total if total else 0)
        if job.status != ReconJob.Status.DONE
        else 100,
        "matched": job.matched,
        "breaks_found": job.breaks_found,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "summary": job.summary,
        "refusal": job.refusal or None,
    }


def open_breaks_by_age(*, today: date) -> dict[str, int]:
    """Open breaks per age bucket (days since found, as of ``today``), in one query."""
    counts = {}
    for label, low, high in AGE_BUCKETS:
        bucket = Q(found_at__date__lte=today - timedelta(days=low))
        if high is not None:
            bucket &= Q(found_at__date__gte=today - timedelta(days=high))
        counts[label] = Count("id", filter=bucket)
    return Break.objects.filter(status=Break.Status.OPEN).aggregate(**counts)


def open_breaks_by_kind() -> dict[str, int]:
    """Open breaks per kind, every kind named (zero when none is open)."""
    found = dict(
        Break.objects.filter(status=Break.Status.OPEN)
        .values_list("kind")
        .annotate(n=Count("id"))
        .values_list("kind", "n")
    )
    return {kind: found.get(kind, 0) for kind in Break.Kind.values}
