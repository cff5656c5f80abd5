"""Price certainty: an advance pays out only at a price its merchant accepted.

The merchant accepts a quote by requesting the advance (or by naming its hash); it holds until
the end of the business day it was given for (``financing.business_day``). Whenever officers act
on the advance, it is priced again: if the price is not the accepted one (the facility's terms
changed, the day rolled over so the fee days changed, the evidence changed the face), the
advance goes to ``requote`` carrying the new price, its approval cleared, until the merchant
accepts that price. Until an officer approves it, the merchant may withdraw the request.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import F

from financing.business_day import business_day
from financing.exceptions import AdvanceRefused, QuoteChanged, WrongState
from financing.locks import advance_decision_lock, advance_qs_for_update
from financing.models import Advance, Facility
from financing.services._shared import approval_void, holds_release
from financing.services.requests import AdvanceQuote, advance_requote


def advance_price_hold(
    *, advance: Advance, now: datetime, reason: str, quote: AdvanceQuote | None = None
) -> bool:
    """Price a pending advance as of ``now``; send it to ``requote`` unless its accepted price
    still holds. Return True when it was sent back to the merchant.

    The caller holds the advance's lock (``financing.locks``) in its transaction, and may pass
    the ``advance_requote`` it made as of ``now``. A requote carries the new price on the
    advance, clears any approval and says ``reason``.

    :raises AdvanceRefused: the receivables cannot be financed now (nothing is changed).
    """
    if quote is None:
        quote = advance_requote(advance=advance, today=business_day(now))
    # Outside requote the advance's price is the accepted one (a CHECK says so); in requote it
    # is the pending quote, which holds until its own day ends.
    if quote.terms_hash == advance.price_hash and now <= advance.quote_expires_at:
        return False
    _price_apply(advance, quote)
    advance.status = Advance.Status.REQUOTE
    advance.approved_by = None
    advance.approved_at = None
    advance.approval_hash = ""
    advance.decision_note = f"New price for the merchant to accept: {reason}"
    advance.save()
    return True


def advance_requote_send(*, advance: Advance, now: datetime, reason: str) -> bool:
    """Re-price ``advance`` as of ``now`` and, if its price changed, send it to the merchant.

    The hook for anything that may change a price behind a pending advance (a facility change):
    takes the advance's lock itself, in the caller's transaction or its own. An advance that
    is no longer pending is left alone; one whose receivables cannot be financed any more
    loses its approval and waits for an officer, with the reason in its note. Return True
    when the advance now waits for the merchant to accept a new price.
    """
    with transaction.atomic():
        locked = advance_decision_lock(advance.pk)
        if locked.status not in Advance.PENDING:
            return False
        try:
            with transaction.atomic():
                return advance_price_hold(advance=locked, now=now, reason=reason)
        except AdvanceRefused as exc:
            if locked.status == Advance.Status.APPROVED:
                approval_void(locked, f"{reason}: {exc.message}")
            return False


def advance_accept(*, advance: Advance, terms_hash: str, now: datetime) -> Advance:
    """Accept the new price of an advance in ``requote``: it returns to the officers' queue.

    Idempotent: accepting the price the advance already carries, accepted, returns it as is.

    :raises WrongState: the advance is not waiting for the merchant.
    :raises QuoteChanged: ``terms_hash`` is not the pending price, or the pending quote expired
        (then the advance carries a fresh price, kept, which the error names).
    :raises AdvanceRefused: the pending quote expired and the receivables cannot be financed now.
    """
    expired = ""
    with transaction.atomic():
        locked = advance_decision_lock(advance.pk)
        if locked.status != Advance.Status.REQUOTE:
            if terms_hash == locked.accepted_hash == locked.price_hash:
                return locked  # a repeat of an acceptance
            raise WrongState(
                f"Advance {locked.ref} is {locked.get_status_display().lower()}; "
                "there is no new price to accept."
            )
        if terms_hash != locked.price_hash:
            raise QuoteChanged(
                f"That is not the price on offer; the pending quote is {locked.price_hash}.",
                terms_hash=locked.price_hash,
            )
        if now > locked.quote_expires_at:
            advance_price_hold(advance=locked, now=now, reason="the quote expired")
            expired = locked.price_hash
        else:
            locked.accepted_hash = locked.price_hash
            locked.status = Advance.Status.REQUESTED
            locked.decision_note = ""
            locked.save()
    if expired:  # raised after commit, so the fresh quote is kept for the merchant
        raise QuoteChanged(
            f"That quote expired; the new pending quote is {expired}.", terms_hash=expired
        )
    return locked


def advance_withdraw(*, advance: Advance, now: datetime, reason: str = "") -> Advance:
    """Withdraw a request that no officer approved yet; its receivables and room free at once.

    ``reason``, if given, is kept in the advance's note for the officers.

    Idempotent: withdrawing a withdrawn advance returns it as is.

    :raises WrongState: the advance was approved, decided or paid out already.
    """
    with transaction.atomic():
        locked = advance_qs_for_update().select_related("facility").get(pk=advance.pk)
        if locked.status == Advance.Status.WITHDRAWN:
            return locked
        if locked.status not in Advance.WITHDRAWABLE:
            raise WrongState(
                f"Advance {locked.ref} is {locked.get_status_display().lower()}; "
                "only a request not yet approved can be withdrawn."
            )
        locked.status = Advance.Status.WITHDRAWN
        locked.decided_at = now
        locked.decision_note = f"Withdrawn by the merchant. {reason}".strip()
        locked.save()
        holds_release(locked)
    return locked


def _price_apply(advance: Advance, quote: AdvanceQuote) -> None:
    """Carry ``quote`` on the advance and its receivables; the facility's CHECK caps the room."""
    delta = quote.total("advance_minor") - advance.advance_minor
    if delta:
        Facility.objects.filter(pk=advance.facility_id).update(
            committed_minor=F("committed_minor") + delta
        )
    advance.face_minor = quote.total("face_minor")
    advance.advance_minor = quote.total("advance_minor")
    advance.fee_minor = quote.total("fee_minor")
    advance.reserve_minor = quote.total("reserve_minor")
    advance.days, advance.due_date, advance.apr = quote.days, quote.due_date, quote.apr
    advance.mean_days = quote.mean_days
    advance.price_hash, advance.priced_on = quote.terms_hash, quote.priced_on
    advance.quote_expires_at = quote.expires_at
    priced = {item.verdict.ref: item.quote for item in quote.items}
    for assignment in advance.assignments_by_id():
        price = priced[assignment.invoice_ref]
        advance.assignments.filter(pk=assignment.pk).update(
            face_minor=price.face_minor, advance_minor=price.advance_minor
        )
        # The row as stored: a decision reads these again (``Advance.assignments_by_id``).
        assignment.face_minor, assignment.advance_minor = price.face_minor, price.advance_minor
