"""manage.py create_api_key MARKETPLACE_CODE: issue a credential and print it once, as JSON."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from merchants.models import Marketplace
from merchants.services import api_key_issue


class Command(BaseCommand):
    help = 'Issue an API key for a marketplace; prints {"api_key": ..., "signing_secret": ...}.'

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("marketplace_code")
        parser.add_argument("--label", default="", help="What the key is for, e.g. 'prod-eu'.")

    def handle(self, *args: Any, **options: Any) -> None:
        marketplace = Marketplace.objects.filter(code=options["marketplace_code"]).first()
        if marketplace is None:
            known = ", ".join(Marketplace.objects.values_list("code", flat=True)) or "none yet"
            raise CommandError(
                f"No marketplace with code {options['marketplace_code']!r} (known: {known})."
            )
        issued = api_key_issue(marketplace=marketplace, now=timezone.now(), label=options["label"])
        self.stdout.write(
            json.dumps({"api_key": issued.key, "signing_secret": issued.signing_secret})
        )
