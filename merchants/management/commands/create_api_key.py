"""manage.py create_api_key MARKETPLACE_CODE | --merchant PUBLIC_ID | --bank: issue a credential,
print once.

    manage.py create_api_key acme --label prod            # a marketplace key
    manage.py create_api_key --merchant mer_3f2a9c0d1e4b5a6f  # a key scoped to one merchant
    manage.py create_api_key --bank --label statements   # the bank's systems: statements in

Both print {"api_key": ..., "signing_secret": ...} as JSON; neither is shown again.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from merchants.exceptions import MerchantNotActive
from merchants.models import Marketplace, Merchant
from merchants.services import IssuedApiKey, api_key_issue


class Command(BaseCommand):
    help = (
        "Issue an API key for a marketplace (MARKETPLACE_CODE) or for one merchant "
        '(--merchant PUBLIC_ID); prints {"api_key": ..., "signing_secret": ...}.'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "marketplace_code", nargs="?", help="The marketplace's code, for a marketplace key."
        )
        parser.add_argument(
            "--merchant",
            metavar="PUBLIC_ID",
            help="A merchant's public id (mer_…), for a key scoped to that merchant alone.",
        )
        parser.add_argument(
            "--bank", action="store_true", help="A key of the bank's systems, for statements."
        )
        parser.add_argument("--label", default="", help="What the key is for, e.g. 'prod-eu'.")

    def handle(self, *args: Any, **options: Any) -> None:
        code, public_id = options["marketplace_code"], options["merchant"]
        if options["bank"]:
            if code is not None or public_id is not None:
                raise CommandError("A --bank key belongs to the bank alone: name no other party.")
            issued = api_key_issue(bank=True, now=timezone.now(), label=options["label"])
            self.stdout.write(
                json.dumps({"api_key": issued.key, "signing_secret": issued.signing_secret})
            )
            return
        if code is not None and public_id is not None:
            raise CommandError(
                "Give a marketplace code or --merchant PUBLIC_ID, not both: "
                "a key belongs to one party."
            )
        if code is None and public_id is None:
            raise CommandError(
                "Give a marketplace code for a marketplace key, "
                "or --merchant PUBLIC_ID for a merchant key."
            )
        now, label = timezone.now(), options["label"]
        if code is not None:
            issued = api_key_issue(marketplace=self._marketplace(code), now=now, label=label)
        else:
            issued = self._merchant_key(public_id, now=now, label=label)
        self.stdout.write(
            json.dumps({"api_key": issued.key, "signing_secret": issued.signing_secret})
        )

    def _marketplace(self, code: str) -> Marketplace:
        marketplace = Marketplace.objects.filter(code=code).first()
        if marketplace is None:
            known = ", ".join(Marketplace.objects.values_list("code", flat=True)) or "none yet"
            raise CommandError(f"No marketplace with code {code!r} (known: {known}).")
        return marketplace

    def _merchant_key(self, public_id: str, *, now: datetime, label: str) -> IssuedApiKey:
        merchant = Merchant.objects.filter(public_id=public_id).first()
        if merchant is None:
            raise CommandError(
                f"No merchant with public id {public_id!r} (public ids look like mer_<16 hex>)."
            )
        try:
            return api_key_issue(merchant=merchant, now=now, label=label)
        except MerchantNotActive as exc:
            raise CommandError(str(exc)) from None
