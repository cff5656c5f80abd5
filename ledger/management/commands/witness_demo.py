"""manage.py witness_demo DIR: set up the demo's witness, run by marketplace acme (make demo).

Makes its key once (DIR/witness.key), registers it with the bank, and issues acme an API key
for it (DIR/witness-credentials.json). Demo only: a real witness keeps its key to itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from ledger.log.checkpoints import witness_register
from ledger.log.notes import Signer
from ledger.verify import ALG_COSIGNATURE
from merchants.models import Marketplace
from merchants.services import api_key_issue

NAME = "acme.demo/witness"


class Command(BaseCommand):
    help = "Set up the demo's witness (key, registration, API key) in DIR."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dir", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        folder: Path = options["dir"]
        key_file = folder / "witness.key"
        if not key_file.exists():
            key_file.write_text(Signer.generate(NAME, ALG_COSIGNATURE).encoded + "\n")
            key_file.chmod(0o600)
        signer = Signer.parse(key_file.read_text().strip(), ALG_COSIGNATURE)
        now = timezone.now()
        witness_register(name=NAME, vkey=signer.verifier.vkey, party="acme (demo)", now=now)
        issued = api_key_issue(
            marketplace=Marketplace.objects.get(code="acme"), now=now, label="demo witness"
        )
        credentials = folder / "witness-credentials.json"
        credentials.write_text(
            json.dumps({"api_key": issued.key, "signing_secret": issued.signing_secret})
        )
        credentials.chmod(0o600)
        self.stdout.write(f"demo witness {NAME}: {signer.verifier.vkey}")
