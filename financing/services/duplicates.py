"""False duplicates: a senior officer clears a DUPLICATE_INVOICE flag that is wrong, with a
written reason. Four-eyes like every risk change: one officer proposes, a different senior
officer confirms (``financing.services.proposals``); the clearance shows on the receivable.

The clearance lifts the flag only: every other rule still judges the receivable, and the one
live assignment per fingerprint still refuses a true twin that another advance holds.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User

from financing.eligibility import Code, verdicts
from financing.exceptions import WrongState
from financing.models import DuplicateClearance, Receivable, RiskChange
from financing.services._shared import (
    officer_require,
    proposal_confirmed_require,
    proposal_record,
)


def duplicate_clear_propose(
    *, receivable: Receivable, officer: User, reason: str, now: datetime
) -> RiskChange:
    """Propose clearing the DUPLICATE_INVOICE flag of ``receivable``, with a written reason.

    :raises NotPermitted: the officer may not decide on advances.
    :raises WrongState: no reason, the receivable is not flagged as a duplicate, or a
        clearance of it is pending already.
    """
    officer_require(officer, "financing.approve_advance")
    judged = verdicts(receivable.merchant, now.date(), [receivable.ref])
    if not any(Code.DUPLICATE_INVOICE in {r.code for r in v.reasons} for v in judged):
        raise WrongState(f"Receivable {receivable.ref} is not flagged as a duplicate.")
    return proposal_record(
        kind=RiskChange.Kind.DUPLICATE_CLEAR,
        target=f"receivable:{receivable.merchant_id}:{receivable.ref}",
        officer=officer,
        reason=reason,
        now=now,
        before={"flag": Code.DUPLICATE_INVOICE.value},
        payload={
            "merchant": receivable.merchant_id,
            "ref": receivable.ref,
            "entry": receivable.entry_id,
            "fingerprint": receivable.fingerprint,
        },
    )


def duplicate_clear_apply(*, change: RiskChange, now: datetime) -> DuplicateClearance:
    """Record the clearance a confirmed proposal names, bound to the invoice entry looked at.

    :raises WrongState: ``change`` is not a confirmed clearance.
    """
    proposal_confirmed_require(change, RiskChange.Kind.DUPLICATE_CLEAR)
    payload = change.payload
    return DuplicateClearance.objects.create(
        merchant_id=payload["merchant"],
        invoice_ref=payload["ref"],
        entry_id=payload["entry"],
        proposal=change,
        cleared_at=now,
    )
