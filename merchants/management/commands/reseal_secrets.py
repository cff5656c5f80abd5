"""manage.py reseal_secrets [--check]: move every sealed secret under the newest sealing key.

Key rotation, step two of three: (1) put a new key first in CHAINFIN_SEALING_KEYS and restart,
(2) run this, (3) drop the old key and restart. ``--check`` changes nothing and exits 1 while
any row is still sealed under an older key, so step three can be gated on it.
"""

from __future__ import annotations

from typing import Any

from cryptography.fernet import InvalidToken
from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from merchants.credentials import secret_reseal


class Command(BaseCommand):
    help = "Re-seal every sealed secret (CHAINFIN_SEALED_FIELDS) under the newest sealing key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check", action="store_true", help="change nothing; exit 1 if any row is stale"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stale_total = 0
        for dotted in settings.CHAINFIN_SEALED_FIELDS:
            app_label, model_name, field = dotted.split(".")
            model = apps.get_model(app_label, model_name)
            stale = resealed = 0
            # Compare-and-set per row: a secret replaced meanwhile (a new key issued, an endpoint
            # re-created) is left alone rather than overwritten with the old one.
            for pk, sealed in model._default_manager.values_list("pk", field).iterator():
                try:
                    fresh = secret_reseal(bytes(sealed))
                except InvalidToken as error:
                    raise CommandError(
                        f"{dotted} of row {pk}: no key in CHAINFIN_SEALING_KEYS opens it; "
                        "put back the key it was sealed with."
                    ) from error
                if fresh is None:
                    continue
                stale += 1
                if not options["check"]:
                    resealed += model._default_manager.filter(pk=pk, **{field: sealed}).update(
                        **{field: fresh}
                    )
            stale_total += stale
            verb = "stale" if options["check"] else "resealed"
            count = stale if options["check"] else resealed
            self.stdout.write(f"{dotted}: {count} {verb}")
        if options["check"] and stale_total:
            raise CommandError(f"{stale_total} secrets are not under the newest key: run reseal.")
