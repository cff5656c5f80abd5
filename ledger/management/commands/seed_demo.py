"""manage.py seed_demo: load six months of plausible trade evidence for the demo, once.

Everything goes in through the doors a marketplace integration uses (marketplace_create,
merchant_onboard, event_parse and entries_append), so the demo evidence is validated, hashed,
chained and projected exactly like real evidence, and ``verify_ledger`` proves it intact.
"""

from __future__ import annotations

import random
import time
from base64 import b32decode
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import count
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from config.demo_only import demo_only
from config.two_factor import (
    TotpDeviceExists,
    totp_device_enroll,
    totp_device_for,
    totp_secret,
)
from ledger.events import event_parse
from ledger.management.commands._demo_history import (
    MARKETPLACES,
    MERCHANTS,
    DemoHistory,
    MerchantSpec,
)
from ledger.models import Entry, Invoice, Order, Payout, Shipment
from ledger.services import NewEntry, entries_append
from merchants.models import Marketplace, Membership, Merchant
from merchants.services import marketplace_create, membership_grant, merchant_onboard

if TYPE_CHECKING:
    from django.contrib.auth.models import User

DEMO_MARKETPLACE = "acme"
# Printed on screen by this command and the Makefile: a demo login, not a secret.
DEMO_PASSWORD = "chainfin-demo"  # noqa: S105
SEED = 2026
BATCH = 200


@dataclass(frozen=True, slots=True)
class _OfficerSpec:
    username: str
    group: str  # "" for the superuser; a group's permissions come from its migration
    role: str


# Bank staff: the admin asks each for the password and a code from their TOTP device.
OFFICERS = (
    _OfficerSpec("admin", "", "superuser"),
    _OfficerSpec("officer", "officer", "officer"),
    _OfficerSpec("senior", "senior officer", "senior officer"),
    _OfficerSpec("auditor", "auditor", "auditor, read-only"),
)


def demo_totp_key(username: str) -> str:
    """A fixed TOTP key (hex) whose base32 secret reads CHAINFINDEMOONLY<USERNAME>AAA….

    Printed on screen for the demo's authenticator apps, and plainly not a real officer's key.
    """
    return b32decode(f"CHAINFINDEMOONLY{username.upper()}".ljust(32, "A")).hex()


def _chunks(items: Sequence[NewEntry], size: int) -> Iterator[Sequence[NewEntry]]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


class Command(BaseCommand):
    help = "Load demo marketplaces, merchants, logins and six months of trade evidence, once."

    def handle(self, *args: object, **options: object) -> None:
        demo_only("seed_demo")
        now = timezone.now()
        # On every run, so that a demo database loaded before two-factor gets its officers too.
        with transaction.atomic():
            officers = [self._officer(spec) for spec in OFFICERS]
        if Marketplace.objects.filter(code=DEMO_MARKETPLACE).exists():
            self.stdout.write(
                f"Demo evidence is already loaded (marketplace '{DEMO_MARKETPLACE}' exists);"
                " not loaded again."
            )
            self._print_logins(officers)
            return
        started = time.perf_counter()
        # All or nothing: a run that fails half way must not leave the marketplace behind, or
        # the next run would take the half-loaded demo for a loaded one.
        with transaction.atomic():
            self._seed(now)
        self._summarise(time.perf_counter() - started)
        self._print_logins(officers)

    def _seed(self, now: datetime) -> None:
        # Deterministic on purpose: the same demo every time, not a secret in sight.
        rng = random.Random(SEED)  # noqa: S311
        markets = {spec.code: spec for spec in MARKETPLACES}
        marketplaces = {
            spec.code: marketplace_create(code=spec.code, name=spec.name) for spec in MARKETPLACES
        }
        order_numbers = {spec.code: count(100_001) for spec in MARKETPLACES}
        self.stdout.write(f"Marketplaces {', '.join(marketplaces)}.")
        for spec in MERCHANTS:
            marketplace = marketplaces[spec.marketplace]
            merchant = merchant_onboard(
                legal_name=spec.legal_name,
                country=spec.country,
                tax_id=spec.tax_id,
                marketplace=marketplace,
                seller_id=spec.seller_id,
                kyc_status=spec.kyc_status,
            )
            user = self._user(spec.username, superuser=False)
            membership_grant(user=user, merchant=merchant, role=Membership.Role.OWNER)
            history = DemoHistory(
                spec, markets[spec.marketplace], rng, now, order_numbers[spec.marketplace]
            )
            entries = [
                NewEntry(merchant_id=merchant.pk, event=event_parse(raw))
                for raw in history.events()
            ]
            for chunk in _chunks(entries, BATCH):
                entries_append(source=marketplace.code, entries=chunk, now=now)
            self._report(spec, merchant, Counter(new.event.type for new in entries))

    def _officer(self, spec: _OfficerSpec) -> tuple[_OfficerSpec, str]:
        """The staff login of ``spec`` with its TOTP device; returns the device's secret.

        Existing accounts and devices are reused untouched (a device replaced with
        ``totp_enroll --reset`` stays replaced).
        """
        user = self._user(spec.username, superuser=not spec.group, staff=True)
        if spec.group:
            group, _ = Group.objects.get_or_create(name=spec.group)
            user.groups.add(group)
        try:
            device = totp_device_enroll(user=user, key=demo_totp_key(spec.username))
        except TotpDeviceExists:
            device = totp_device_for(user=user)
        return spec, totp_secret(device) if device is not None else "(no confirmed device)"

    def _user(self, username: str, *, superuser: bool, staff: bool = False) -> User:
        """The demo login ``username``; an existing account is reused, its password untouched."""
        users = get_user_model()._default_manager
        existing = users.filter(username=username).first()
        if existing is not None:
            return existing
        email = f"{username}@chainfin.example"
        if superuser:
            return users.create_superuser(username=username, email=email, password=DEMO_PASSWORD)
        return users.create_user(
            username=username, email=email, password=DEMO_PASSWORD, is_staff=staff
        )

    def _report(self, spec: MerchantSpec, merchant: Merchant, types: Counter[str]) -> None:
        self.stdout.write(
            f"  {spec.username}  {merchant.legal_name} ({merchant.country}, KYC"
            f" {merchant.kyc_status}) on {spec.marketplace} as {spec.seller_id}:"
            f" {types.total()} events: {types['order.placed']} orders"
            f" ({types['order.cancelled']} cancelled), {types['invoice.issued']} invoices,"
            f" {types['invoice.credited']} credit notes, {types['shipment.dispatched']}"
            f" shipments ({types['shipment.delivered']} delivered,"
            f" {types['shipment.returned']} returned), {types['payout.settled']} payouts"
        )

    def _summarise(self, elapsed: float) -> None:
        shipments = dict(
            Shipment.objects.values("status").annotate(n=Count("pk")).values_list("status", "n")
        )
        credited = Invoice.objects.exclude(status=Invoice.Status.ISSUED).count()
        self.stdout.write(
            self.style.SUCCESS(
                f"Loaded {Entry.objects.count():,} entries for {Merchant.objects.count()}"
                f" merchants in {elapsed:.1f}s: {Order.objects.count()} orders,"
                f" {Invoice.objects.count()} invoices ({credited} credited),"
                f" {sum(shipments.values())} shipments ({shipments.get('delivered', 0)} delivered,"
                f" {shipments.get('returned', 0)} returned), {Payout.objects.count()} payouts."
            )
        )

    def _print_logins(self, officers: Sequence[tuple[_OfficerSpec, str]]) -> None:
        self.stdout.write(f"Logins (password '{DEMO_PASSWORD}'):")
        for officer, secret in officers:
            self.stdout.write(
                f"  {officer.username:<10}  {officer.role}, admin at /admin/ with a code;"
                f" authenticator secret {secret}"
            )
        for spec in MERCHANTS:
            self.stdout.write(f"  {spec.username:<10}  owner of {spec.legal_name}")
        self.stdout.write(
            "Admin codes (demo keys, never real ones): add the secret to an authenticator app"
            " (TOTP, 6 digits, 30 s), or run `.venv/bin/python manage.py totp_code admin`."
        )
