"""manage.py rebuild_projections: rebuild the read models from the entries, report differences."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ledger.rebuild import projections_rebuild


class Command(BaseCommand):
    help = "Replay every entry through the projectors and report rows that differ from before."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Compute and report the differences, then roll the rebuild back.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = projections_rebuild(
            dry_run=options["dry_run"],
            on_progress=lambda n: self.stderr.write(f"  ... {n:,} entries replayed"),
        )
        for difference in report.differences[:50]:
            self.stdout.write(f"  {difference}")
        if len(report.differences) > 50:
            self.stdout.write(f"  ... and {len(report.differences) - 50} more")
        verb = "would change" if options["dry_run"] else "changed"
        summary = (
            f"Replayed {report.entries:,} entries into {report.rows:,} projection rows;"
            f" {len(report.differences)} row(s) {verb}."
        )
        style = self.style.SUCCESS if not report.differences else self.style.WARNING
        self.stdout.write(style(summary))
        if report.differences:
            raise SystemExit(1)
