"""manage.py log_export --merchant PUBLIC_ID [--out FILE]: an evidence bundle of one chain.

The bundle (JSON) holds the merchant's entries with their canonical bodies and inclusion
proofs, and the latest signed checkpoint with its cosignatures; anyone checks it offline with
``python -m ledger.verify FILE --key <the bank's vkey>``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ledger.exceptions import ProofUnavailable
from ledger.log.bundles import bundle_export
from ledger.models import Entry
from merchants.models import Merchant


class Command(BaseCommand):
    help = "Export one merchant's chain as an evidence bundle for the offline verifier."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--merchant", required=True, help="The merchant's public id.")
        parser.add_argument("--tree-size", type=int, help="Prove against this checkpoint.")
        parser.add_argument("--out", type=Path, help="Write here instead of standard output.")

    def handle(self, *args: Any, **options: Any) -> None:
        merchant = Merchant.objects.filter(public_id=options["merchant"]).first()
        if merchant is None:
            raise CommandError(f"No merchant with public id {options['merchant']!r}.")
        entries = (
            Entry.objects.filter(chain=merchant.pk)
            .select_related("chain__merchant")
            .order_by("seq")
        )
        try:
            bundle = bundle_export(entries=entries.iterator(), tree_size=options["tree_size"])
        except ProofUnavailable as exc:
            raise CommandError(str(exc)) from exc
        text = json.dumps(bundle, indent=1, ensure_ascii=False)
        if options["out"]:
            options["out"].write_text(text + "\n", encoding="utf-8")
        else:
            self.stdout.write(text)
