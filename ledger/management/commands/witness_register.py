"""manage.py witness_register VKEY --party WHO: register a witness's cosigner key with the bank."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from ledger.log.checkpoints import witness_register
from ledger.verify import VerificationError, Verifier


class Command(BaseCommand):
    help = "Register (or re-key) a witness: its checkpoint cosignatures are stored from then on."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("vkey", help="The witness's vkey: <name>+<key id>+<base64 key>.")
        parser.add_argument("--party", required=True, help="Who runs it (a marketplace, …).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            name = Verifier.parse(options["vkey"]).name
            witness = witness_register(
                name=name, vkey=options["vkey"], party=options["party"], now=timezone.now()
            )
        except VerificationError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"witness {witness.name} registered for {witness.party}")
