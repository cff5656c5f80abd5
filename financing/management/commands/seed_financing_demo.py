"""Demo financing on top of seed_demo's evidence: facilities and advances in every state,
among them a new price waiting for its merchant (requote) and a withdrawn request.

Goes through the same services officers and merchants use, so the demo's books, chains and
notices are the real thing: each facility is proposed by ``officer`` and confirmed by
``senior`` (four-eyes), one rate change is proposed and confirmed, and one threshold raise waits
for the senior in *Risk changes*. Runs once; later runs say so and change nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from config.demo_only import demo_only
from financing.eligibility import verdicts
from financing.models import Advance, AssignmentNotice, Facility
from financing.notices import notice_deliver
from financing.services.decisions import advance_approve
from financing.services.facilities import facility_change_propose, facility_open_propose
from financing.services.proposals import change_confirm
from financing.services.quotes import advance_requote_send, advance_withdraw
from financing.services.requests import advance_request
from ledger.money import format_minor_units
from merchants.models import Merchant

TERMS: dict[str, Any] = {
    "limit_minor": 5_000_000,  # 50,000.00
    "advance_rate_bp": 8000,
    "annual_rate_bp": 1800,
    "day_count": "ACT/360",
    "max_tenor_days": 120,
    "min_days_to_due": 7,
    "debtor_cap_bp": 8000,
    "checker_threshold_minor": 150_000,  # advances above 1,500.00 need a second officer
}


class Command(BaseCommand):
    help = "Open demo facilities and request, approve and disburse demo advances, once."

    def handle(self, *args: object, **options: object) -> None:
        demo_only("seed_financing_demo")
        if Facility.objects.exists():
            self.stdout.write("Demo financing is already loaded; not loaded again.")
            return
        try:
            officer = User.objects.get(username="officer")
            senior = User.objects.get(username="senior")
        except User.DoesNotExist:
            raise CommandError("Run seed_demo first: it creates the officers.") from None
        now = timezone.now()
        with transaction.atomic():
            merchants = Merchant.objects.filter(kyc_status=Merchant.KycStatus.VERIFIED)
            facilities = []
            for merchant in merchants.order_by("pk"):
                opening = facility_open_propose(
                    merchant=merchant,
                    currency="EUR",
                    officer=officer,
                    reason="Demo onboarding",
                    now=now,
                    terms=TERMS,
                )
                change_confirm(change=opening, officer=senior, now=now)
                facilities.append(Facility.objects.get(merchant=merchant, active=True))
            self._four_eyes(facilities, officer, senior, now)
            for facility in facilities:
                self._advances(facility.merchant, officer, now)
        self._email_notices(now)

    def _email_notices(self, now: Any) -> None:
        """Deliver the business buyers' notices here, so the demo's console shows the e-mail.

        The worker would send them too; delivery is idempotent, so it finds them delivered.
        """
        emailed = AssignmentNotice.objects.filter(channel=AssignmentNotice.Channel.EMAIL)
        for notice in emailed.select_related("debtor").order_by("pk"):
            notice_deliver(notice_id=notice.pk, now=now)
            notice.refresh_from_db()
            self.stdout.write(
                f"  notice of assignment {notice.advance.ref} to {notice.debtor.name}: "
                f"{notice.get_status_display().lower()}"
                + (f" ({notice.last_error})" if notice.last_error else "")
            )

    def _four_eyes(self, facilities: list[Facility], officer: User, senior: User, now: Any) -> None:
        """One change proposed and confirmed, and one left pending for the senior officer."""
        review = facility_change_propose(
            facility=facilities[0],
            officer=officer,
            reason="Demo: annual rate review",
            now=now,
            changes={"annual_rate_bp": 1650},
        )
        change_confirm(change=review, officer=senior, now=now)
        self.stdout.write(
            f"  {facilities[0]}: rate change proposed by officer, confirmed by senior"
        )
        facility_change_propose(
            facility=facilities[-1],
            officer=officer,
            reason="Demo: busy season, fewer second-officer reviews",
            now=now,
            changes={"checker_threshold_minor": 300_000},
        )
        self.stdout.write(f"  {facilities[-1]}: threshold raise proposed, awaiting the senior")

    def _advances(self, merchant: Merchant, officer: User, now: Any) -> None:
        judged = [v for v in verdicts(merchant, now.date()) if v.eligible]
        # A business buyer's invoice first, so the disbursed advance e-mails a notice (below).
        judged.sort(key=lambda v: not v.debtor_key.startswith("business:"))
        eligible = [v.ref for v in judged]
        plans = [
            ("disbursed", eligible[:1]),
            ("awaiting", eligible[1:4]),
            ("queue", eligible[4:6]),
            ("requote", eligible[6:7]),
            ("withdrawn", eligible[7:8]),
        ]
        for plan, refs in plans:
            if not refs:
                continue
            # Yesterday's quote: today it is another price, which waits for the merchant.
            asked = now - timedelta(days=1) if plan == "requote" else now
            advance = advance_request(
                merchant=merchant, refs=refs, request_key=f"demo-{plan}", now=asked
            )
            if plan in ("disbursed", "awaiting"):
                advance = advance_approve(advance=advance, officer=officer, now=now)
            elif plan == "requote":
                advance_requote_send(advance=advance, now=now, reason="the business day ended")
                advance.refresh_from_db()
            elif plan == "withdrawn":
                advance = advance_withdraw(advance=advance, now=now, reason="Paid early")
            self.stdout.write(
                f"  {merchant.legal_name}: advance {advance.ref} of "
                f"{format_minor_units(advance.advance_minor, advance.currency)} "
                f"{advance.currency} on {len(refs)} invoices, {self._state(advance)}"
            )
        self.stdout.write(f"  {merchant.legal_name}: {len(eligible)} receivables were eligible")

    @staticmethod
    def _state(advance: Advance) -> str:
        return advance.get_status_display().lower()
