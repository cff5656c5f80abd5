"""manage.py verify_financing: prove the financing tables agree with the signed chain."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from financing.integrity import financing_verify


class Command(BaseCommand):
    help = (
        "Check every assignment, disbursed advance and disbursement or settlement journal entry"
        " against the chain entries that record them; exit 1 naming the first disagreement."
        " verify_books runs the same check after its own."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        report = financing_verify()
        elapsed = time.perf_counter() - started
        if report.first_problem is not None:
            self.stderr.write(self.style.ERROR(f"BROKEN: {report.first_problem}"))
            raise SystemExit(1)
        self.stdout.write(
            self.style.SUCCESS(
                f"OK: {report.merchants:,} merchant(s), {report.assignments:,} assignments,"
                f" {report.advances:,} advances, {report.journal_entries:,} journal entries"
                f" agree with the chain in {elapsed:.2f}s"
            )
        )
