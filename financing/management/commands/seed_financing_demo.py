"""Demo financing on top of seed_demo's evidence: facilities and advances in every state,
among them a new price waiting for its merchant (requote) and a withdrawn request, and, once
paid out, settlement: an advance repaid in full, one partly repaid, one diluted by a credit
note after funding whose recourse is netted from its later release, and a payout line in
suspense (each verified merchant has all four).

Goes through the same services officers and merchants use, so the demo's books, chains and
notices are the real thing: each facility is proposed by ``officer`` and confirmed by
``senior`` (four-eyes), one rate change is proposed and confirmed, and one threshold raise waits
for the senior in *Risk changes*. The marketplace's credit note and payout go in as evidence
(``entries_append``, as the API appends them) and are settled by ``settlement_work_run``, as the
worker settles them; the worker, sent the same work on commit, finds it done. Last, the daily
early-warning check runs, as beat runs it. Runs once; later runs say so and change nothing.
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
from financing.models import (
    Advance,
    Assignment,
    AssignmentNotice,
    Facility,
    LineAllocation,
    SettlementWork,
    SuspenseItem,
)
from financing.notices import notice_deliver
from financing.services.bank_accounts import bank_account_propose
from financing.services.decisions import advance_approve, advance_authorize
from financing.services.early_warning import early_warnings_run
from financing.services.facilities import facility_change_propose, facility_open_propose
from financing.services.proposals import change_confirm
from financing.services.quotes import advance_requote_send, advance_withdraw
from financing.services.requests import advance_request
from financing.services.settlement import settlement_work_run
from ledger.events import event_parse, format_timestamp
from ledger.models import Invoice
from ledger.money import Money, format_minor_units
from ledger.services import NewEntry, entries_append
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
# Published test IBANs (valid check digits, no real account behind them).
DEMO_IBANS = ("DE89370400440532013000", "DE02120300000000202051", "DE02500105170137075030")


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
        to_settle: list[tuple[Merchant, _Settled]] = []
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
                self._payout_account(merchant, officer, senior, now)
            self._four_eyes(facilities, officer, senior, now)
            for facility in facilities:
                spare = self._advances(facility.merchant, officer, now)
                financed = self._financed(facility.merchant, spare, officer, senior, now)
                to_settle.append((facility.merchant, financed))
        self._email_notices(now)
        for merchant, settled in to_settle:
            self._settle(merchant, settled)
        found = early_warnings_run(now=timezone.now())
        self.stdout.write(f"  Early-warning check (daily, from beat): {found} warning(s) listed")

    def _payout_account(self, merchant: Merchant, officer: User, senior: User, now: Any) -> None:
        """The account advances are paid to, proposed and confirmed four-eyes as officers do."""
        iban = DEMO_IBANS[(merchant.pk - 1) % len(DEMO_IBANS)]
        change = bank_account_propose(
            merchant=merchant,
            holder_name=merchant.legal_name,
            iban=iban,
            officer=officer,
            reason="Demo onboarding: account confirmed by the merchant's bank letter",
            now=now,
        )
        change_confirm(change=change, officer=senior, now=now)
        self.stdout.write(f"  {merchant}: payout account ending {iban[-4:]}, confirmed by senior")

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

    def _advances(self, merchant: Merchant, officer: User, now: Any) -> list[str]:
        """Advances in every state before settlement; return the eligible refs left over."""
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
        used = sum(len(refs) for _, refs in plans)
        return [v.ref for v in judged[used:] if v.debtor_key.startswith("marketplace:")]

    def _financed(
        self, merchant: Merchant, spare: list[str], officer: User, senior: User, now: Any
    ) -> _Settled:
        """One advance per settlement story, each on one marketplace receivable, paid out."""
        if len(spare) < len(_STORIES):
            raise CommandError(f"The demo needs {len(_STORIES)} more receivables; it has {spare}.")
        advances = {}
        for story, ref in zip(_STORIES, spare, strict=False):
            advance = advance_request(
                merchant=merchant,
                refs=[ref],
                request_key=f"demo-{story}",
                now=now,
            )
            advance = advance_approve(advance=advance, officer=officer, now=now)
            if advance.status == Advance.Status.APPROVED:  # over the 24-hour threshold
                advance = advance_authorize(advance=advance, officer=senior, now=now)
            advances[story] = advance
        # The marketplace that sent the invoices pays them out and sends their credit notes.
        source = Invoice.objects.get(merchant=merchant, ref=spare[0]).source
        return _Settled(advances, source)

    def _settle(self, merchant: Merchant, settled: _Settled) -> None:
        """The marketplace credits one receivable, then pays out; the work is applied in turn."""
        diluted = settled.assignment("diluted")
        credit = diluted.face_minor // 10
        self._append(
            merchant,
            settled.source,
            "invoice.credited",
            f"{diluted.invoice_ref}-CN1",
            {
                "invoice_ref": diluted.invoice_ref,
                "currency": "EUR",
                "amount": format_minor_units(credit, "EUR"),
                "issue_date": timezone.now().date().isoformat(),
                "reason": "Price reduction of 10% agreed after delivery: one unit scratched.",
            },
        )
        self._settle_pending()
        repaid, part = settled.assignment("repaid"), settled.assignment("partly")
        lines = [
            # First, so that its own release is what the recourse is netted from.
            (diluted.invoice_ref, diluted.face_minor - credit),
            (repaid.invoice_ref, repaid.face_minor),
            (part.invoice_ref, part.face_minor // 2),
            # A digit short: no such invoice, so the money waits in suspense for an officer.
            (repaid.invoice_ref[:-1], 12_500),
        ]
        now = timezone.now()
        self._append(
            merchant,
            settled.source,
            "payout.settled",
            f"PO-{now:%Y%m%d}-{merchant.public_id}",
            {
                "currency": "EUR",
                "amount": format_minor_units(sum(a for _, a in lines), "EUR"),
                "settled_on": now.date().isoformat(),
                "lines": [
                    {"invoice_ref": r, "amount": format_minor_units(a, "EUR")} for r, a in lines
                ],
            },
        )
        self._settle_pending()
        self._report(merchant, settled)

    @staticmethod
    def _append(
        merchant: Merchant, source: str, type_: str, ref: str, data: dict[str, Any]
    ) -> None:
        """Append a marketplace's evidence for ``merchant`` through the API's own service."""
        now = timezone.now()
        raw = {"type": type_, "ref": ref, "occurred_at": format_timestamp(now), "data": data}
        entries_append(source=source, entries=[NewEntry(merchant.pk, event_parse(raw))], now=now)

    @staticmethod
    def _settle_pending() -> None:
        pending = SettlementWork.objects.filter(status=SettlementWork.Status.PENDING)
        for work_id in pending.order_by("pk").values_list("pk", flat=True):
            settlement_work_run(work_id=work_id, now=timezone.now())

    def _report(self, merchant: Merchant, settled: _Settled) -> None:
        name = merchant.legal_name
        for story, advance in settled.advances.items():
            advance.refresh_from_db()
            assignment = settled.assignment(story)
            paid = Money.display(assignment.paid_minor, advance.currency)
            self.stdout.write(
                f"  {name}: advance {advance.ref} {_STORIES[story]}: {paid} of "
                f"{Money.display(assignment.face_minor, advance.currency)} paid, "
                f"{self._state(advance)}"
            )
        netted = LineAllocation.objects.filter(
            merchant=merchant, recourse_netted_minor__gt=0
        ).values_list("recourse_netted_minor", flat=True)
        self.stdout.write(
            f"  {name}: recourse netted from a release: {Money.display(sum(netted), 'EUR')}"
        )
        for item in SuspenseItem.objects.filter(merchant=merchant):
            self.stdout.write(
                f"  {name}: {Money.display(item.amount_minor, item.currency)} in suspense: "
                f"{item.reason}"
            )

    @staticmethod
    def _state(advance: Advance) -> str:
        return advance.get_status_display().lower()


# Settlement stories: what happens to the advance after it is paid out.
_STORIES = {
    "repaid": "repaid in full",
    "partly": "partly repaid",
    "diluted": "diluted by a credit note after funding",
}


class _Settled:
    """The advances of one merchant's settlement stories, by story."""

    def __init__(self, advances: dict[str, Advance], source: str) -> None:
        self.advances = advances
        self.source = source

    def assignment(self, story: str) -> Assignment:
        return Assignment.objects.get(advance=self.advances[story])
