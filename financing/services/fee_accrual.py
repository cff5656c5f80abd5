"""Fee accrual: the discount fee withheld at disbursement is earned day by day over the advance's
life (straight-line over its tenor), moved from unearned discount to fee income by a daily task.

Idempotent per day: the journal key carries the date, and each run only moves what is earned
to date and not yet recognised, so a doubled or missed run leaves the books right. Repayment
recognises whatever is left (``financing.services.settlement``).
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from django.db import transaction
from django.db.models import F

from financing import accounts
from financing.books.services import Leg, journal_post
from financing.business_day import business_day
from financing.locks import advance_qs_for_update, merchant_chain_lock
from financing.models import Advance
from financing.pricing import fee_earned

logger = logging.getLogger(__name__)


def fee_accrual_sweep(*, now: datetime) -> int:
    """Recognise the discount fee earned to today on every outstanding advance; return how many
    advances moved. One advance's failure is logged and the others go on."""
    today = business_day(now)
    earning = Advance.objects.filter(
        status__in=Advance.OUTSTANDING, fee_recognised_minor__lt=F("fee_minor")
    )
    moved = 0
    for advance_id in earning.order_by("pk").values_list("pk", flat=True):
        try:
            with transaction.atomic():
                advance = advance_qs_for_update().select_related("merchant").get(pk=advance_id)
                moved += _advance_accrue(advance, today, now)
        except Exception:  # one advance's failure must not stop the others' accrual
            logger.exception("Fee accrual failed for advance id %s", advance_id)
    return moved


def _advance_accrue(advance: Advance, today: date, now: datetime) -> int:
    if advance.status not in Advance.OUTSTANDING or advance.disbursed_at is None:
        return 0
    elapsed = (today - business_day(advance.disbursed_at)).days
    earned = fee_earned(advance.fee_minor, elapsed, advance.days)
    delta = earned - advance.fee_recognised_minor
    if delta <= 0:
        return 0
    merchant_chain_lock(merchant_id=advance.merchant_id)  # before the accounts: financing.locks
    book = accounts.Chart(advance.merchant, advance.currency)
    journal_post(
        key=f"accrue:{advance.ref}:{today}",
        memo=f"Discount fee of {advance.ref} earned to {today}",
        legs=[Leg(book.unearned_discount(), delta), Leg(book.fee_income(), -delta)],
        now=now,
        merchant_id=advance.merchant_id,  # the bank's accounts only: the legs name no merchant
    )
    advance.fee_recognised_minor = earned
    advance.save(update_fields=["fee_recognised_minor"])
    return 1
