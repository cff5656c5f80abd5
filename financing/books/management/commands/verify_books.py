"""manage.py verify_books: prove every balance equals its postings and every entry balances."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from financing.books.verification import books_verify


class Command(BaseCommand):
    help = (
        "Check that every journal entry balances per currency with two postings or more and that"
        " every account's balance equals the sum of its postings; exit 1 at the first problem."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        report = books_verify()
        elapsed = time.perf_counter() - started
        if report.first_problem is not None:
            self.stderr.write(self.style.ERROR(f"BROKEN: {report.first_problem}"))
            raise SystemExit(1)
        self.stdout.write(
            self.style.SUCCESS(
                f"OK: {report.accounts:,} account(s), {report.entries:,} journal entries,"
                f" {report.postings:,} postings balanced in {elapsed:.2f}s"
            )
        )
