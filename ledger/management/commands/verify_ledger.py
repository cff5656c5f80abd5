"""manage.py verify_ledger [--merchant PUBLIC_ID]: prove the chains intact, or name the break."""

from __future__ import annotations

import os
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ledger.log.audit import log_audit
from ledger.log.checkpoints import log_verifier
from ledger.verification import ledger_checks_problem, ledger_verify
from merchants.models import Merchant


class Command(BaseCommand):
    help = "Recompute every entry hash and link and each chain head; exit 1 at the first break."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--merchant", help="Verify only this merchant's chain (public id).")
        parser.add_argument(
            "--workers",
            type=int,
            default=len(os.sched_getaffinity(0)),
            help="Processes verifying chains side by side (default: one per usable CPU;"
            " 1 verifies in this process).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        merchant_id = None
        if options["merchant"]:
            merchant = Merchant.objects.filter(public_id=options["merchant"]).first()
            if merchant is None:
                raise CommandError(f"No merchant with public id {options['merchant']!r}.")
            merchant_id = merchant.pk
        started = time.perf_counter()
        result = ledger_verify(
            merchant_id=merchant_id,
            on_progress=lambda n: self.stderr.write(f"  ... {n:,} entries verified"),
            workers=max(1, options["workers"]),
        )
        elapsed = time.perf_counter() - started
        if result.first_break is not None:
            self.stderr.write(self.style.ERROR(f"BROKEN: {result.first_break}"))
            raise SystemExit(1)
        # The chains can be made to verify again by whoever rewrites them all; the log's signed
        # tree cannot (ledger/log/audit.py).
        audit = log_audit(verifier=log_verifier())
        if audit.problem is not None:
            self.stderr.write(self.style.ERROR(f"BROKEN: log: {audit.problem}"))
            raise SystemExit(1)
        # And what rests on the chains (financing's assignments, advances and journals).
        resting = ledger_checks_problem()
        if resting is not None:
            self.stderr.write(self.style.ERROR(f"BROKEN: {resting}"))
            raise SystemExit(1)
        rate = result.entries / elapsed if elapsed else 0
        self.stdout.write(
            self.style.SUCCESS(
                f"OK: {result.chains:,} chain(s), {result.entries:,} entries intact"
                f" in {elapsed:.2f}s ({rate:,.0f} entries/s); log of {audit.size:,} entries"
                f" matches them and {audit.checkpoints:,} signed checkpoint(s)"
            )
        )
