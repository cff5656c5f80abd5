"""Maker-checker: an officer approves (the maker), a second officer authorizes above the
checker threshold (the checker), or an officer rejects. What was approved is bound by a hash."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import F

from financing.business_day import business_day
from financing.eligibility import invoices_of_refs_later
from financing.exceptions import (
    AdvanceRefused,
    ApprovalVoid,
    MakerCheckerViolation,
    QuoteChanged,
    WrongState,
)
from financing.locks import (
    advance_decision_lock,
    advance_qs_for_update,
    debtor_limits_and_chain_locked,
    debtor_limits_lock,
)
from financing.models import Advance
from financing.services._shared import approval_void, holds_release, officer_require
from financing.services.disbursement import advance_disburse
from financing.services.quotes import advance_price_hold
from financing.services.requests import AdvanceQuote, advance_requote
from ledger.canonical import canonical_json
from ledger.models import Invoice
from ledger.money import Money
from ledger.sql import rows_later


def advance_approve(
    *, advance: Advance, officer: User, now: datetime, note: str = "", merchant_note: str = ""
) -> Advance:
    """The maker's decision, at the price the merchant accepted. Binds a hash of what was
    approved; small advances disburse at once.

    ``note`` is the officers' record; ``merchant_note``, if any, is what the merchant reads.

    :raises NotPermitted: the officer may not approve.
    :raises WrongState: the advance is not awaiting approval.
    :raises AdvanceRefused: the evidence changed since the request (the reasons say how).
    :raises QuoteChanged: the price is no longer the accepted one; the advance now waits for
        the merchant to accept the new price (kept).
    """
    officer_require(officer, "financing.approve_advance")
    with transaction.atomic():
        # The chain's lock too, before the evidence is re-checked; the invoices and the
        # checker window's total are read with the locks, in their round trip.
        held = _decision_locked(advance, Advance.Status.REQUESTED, window_at=now)
        locked = held.advance
        quote = advance_requote(advance=locked, today=business_day(now), invoices=held.invoices())
        requoted = advance_price_hold(advance=locked, now=now, reason=_PRICE_CHANGED, quote=quote)
        if not requoted:
            locked.approved_by = officer
            locked.approved_at = now
            locked.approval_hash = terms_hash(locked, quote)
            locked.decision_note = note
            locked.merchant_note = merchant_note.strip()
            in_window = held.window_total()
            if in_window <= locked.facility.checker_threshold_minor:
                advance_disburse(advance=locked, now=now)
            else:
                if locked.advance_minor <= locked.facility.checker_threshold_minor:
                    locked.decision_note = _window_note(locked, in_window, note)
                locked.status = Advance.Status.APPROVED
                locked.save()
    if requoted:  # raised after commit, so the new quote waits for the merchant
        raise QuoteChanged(_requote_message(locked), terms_hash=locked.price_hash)
    return locked


CHECKER_WINDOW = timedelta(hours=24)


def advanced_in_window_later(*, advance: Advance, now: datetime) -> Callable[[], int]:
    """Send the read of what the merchant asked for in the 24 hours to ``now``, and return
    what gives that total, ``advance`` included (at its amount when called); inside
    ``ledger.sql.one_round_trip``, read in the round trip of the statements sent with it.

    The checker threshold applies to this total, so splitting one large advance into small
    ones does not dodge the second officer: every advance of the merchant in the currency that
    is requested (or waiting for the merchant to accept a new price), approved or paid out,
    requested or disbursed within the window, counts; rejected and withdrawn ones do not.
    The caller holds the advance's facility lock, so two approvals of one line count each other.
    """
    since = connection.ops.adapt_datetimefield_value(now - CHECKER_WINDOW)
    others = rows_later(  # plain SQL: the ORM's aggregate cost twice the query
        "SELECT SUM(advance_minor) FROM financing_advance"
        " WHERE merchant_id = %s AND currency = %s AND id <> %s AND status NOT IN (%s, %s)"
        " AND (requested_at > %s OR disbursed_at > %s)",
        [
            advance.merchant_id,
            advance.currency,
            advance.pk,
            Advance.Status.REJECTED.value,
            Advance.Status.WITHDRAWN.value,
            since,
            since,
        ],
    )
    return lambda: advance.advance_minor + int(others()[0][0] or 0)


def _window_note(advance: Advance, total: int, note: str) -> str:
    why = (
        f"Needs a second officer: the merchant's advances in 24 hours come to "
        f"{Money(total, advance.currency)}, above the threshold of "
        f"{Money(advance.facility.checker_threshold_minor, advance.currency)}."
    )
    return f"{note}\n{why}" if note else why


def advance_authorize(*, advance: Advance, officer: User, now: datetime) -> Advance:
    """The checker's decision: a second officer releases the money, at the accepted price.

    :raises NotPermitted: the officer may not authorize.
    :raises WrongState: the advance is not approved and awaiting authorization.
    :raises MakerCheckerViolation: the approving officer tries to authorize too.
    :raises ApprovalVoid: what was approved changed; the advance is back in the review queue.
    :raises QuoteChanged: the price is no longer the accepted one (the business day rolled
        over, so the fee days changed); the advance waits for the merchant to accept it.
    """
    officer_require(officer, "financing.authorize_advance")
    void_reason, requoted = "", False
    with transaction.atomic():
        # The chain's lock too, before the evidence is re-checked (its invoices read with it).
        held = _decision_locked(advance, Advance.Status.APPROVED)
        locked = held.advance
        if locked.approved_by_id == officer.pk:
            raise MakerCheckerViolation("The officer who approved an advance cannot authorize it.")
        try:
            quote = advance_requote(
                advance=locked, today=business_day(now), invoices=held.invoices()
            )
            if terms_hash(locked, quote) != locked.approval_hash:
                raise ApprovalVoid("The advance or its terms changed after approval.")
            requoted = advance_price_hold(
                advance=locked, now=now, reason=_PRICE_CHANGED, quote=quote
            )
        except (AdvanceRefused, ApprovalVoid) as exc:
            void_reason = _explained(exc)
            approval_void(locked, void_reason)
        else:
            if not requoted:
                locked.authorized_by = officer
                advance_disburse(advance=locked, now=now)
    if void_reason:  # raised after commit, so the voiding itself is kept
        raise ApprovalVoid(f"Approval void: {void_reason} It needs a fresh approval.")
    if requoted:
        raise QuoteChanged(_requote_message(locked), terms_hash=locked.price_hash)
    return locked


_PRICE_CHANGED = "the price changed since the merchant accepted it."


def _requote_message(advance: Advance) -> str:
    return (
        f"The price of {advance.ref} is no longer the one its merchant accepted; the new "
        "quote waits for the merchant, then for a fresh approval."
    )


def advance_reject(*, advance: Advance, officer: User, now: datetime, note: str) -> Advance:
    """Turn a request down, with a note the merchant reads; its holds and room are released.

    ``note`` is written for the merchant: it is the advance's merchant note (what the portal
    shows) and is kept in the officers' record too.

    :raises NotPermitted: the officer may not decide on advances.
    :raises WrongState: no note, or the advance is no longer open.
    """
    officer_require(officer, "financing.approve_advance")
    if not note.strip():
        raise WrongState("Say why the advance is rejected; the merchant will read it.")
    with transaction.atomic():
        locked = _advance_locked(advance, *Advance.PENDING, assignments_read=False)
        locked.status = Advance.Status.REJECTED
        locked.decided_at = now
        locked.decision_note = note
        locked.merchant_note = note.strip()
        locked.save()
        holds_release(locked)
    return locked


def terms_hash(advance: Advance, quote: AdvanceQuote | None = None) -> str:
    """SHA-256 of everything an approval binds: the advance's terms, its facility's terms (by
    version) and each receivable's evidence as it stands. Any change gives another hash.

    ``quote``, the caller's ``advance_requote`` of ``advance`` in this transaction, under the
    merchant's chain lock, gives the invoices' faces as that re-check read them; without it
    they are read here.
    """
    items = [
        (a.invoice_ref, a.fingerprint, a.face_minor, a.advance_minor, a.due_date)
        for a in advance.assignments_by_id()
    ]
    if quote is not None:
        faces: dict[str, int] = {i.verdict.ref: i.verdict.face_minor for i in quote.items}
    else:
        faces = dict(
            Invoice.objects.filter(merchant_id=advance.merchant_id, ref__in=[i[0] for i in items])
            .annotate(face=F("amount_minor") - F("credited_minor"))
            .values_list("ref", "face")
        )
    terms = {
        "advance": advance.ref,
        "merchant": advance.merchant_id,
        "facility": [advance.facility_id, advance.facility.version],
        "currency": advance.currency,
        "amounts": [
            advance.face_minor,
            advance.advance_minor,
            advance.fee_minor,
            advance.reserve_minor,
        ],
        "days": advance.days,
        "due_date": advance.due_date.isoformat(),
        "apr": str(advance.apr),
        "items": [
            [ref, fp, face, adv, due.isoformat(), faces.get(ref)]
            for ref, fp, face, adv, due in items
        ],
    }
    return hashlib.sha256(canonical_json(terms)).hexdigest()


def _advance_locked(advance: Advance, *statuses: str, assignments_read: bool = True) -> Advance:
    """Lock ``advance`` with its facility, check it is in one of ``statuses``, then lock its
    debtors' bank-wide limits; with ``assignments_read``, read its merchant and its assignments
    too, once for the whole decision (an approval reads them five times)."""
    locked = _advance_in_state_locked(advance, statuses, assignments_read)
    debtor_limits_lock(advance=locked)
    return locked


class _Held(NamedTuple):
    """An advance locked for a decision, and what was read with its locks (loaded when called)."""

    advance: Advance
    invoices: Callable[[], list[Invoice]]  # its receivables' invoices, read under the chain lock
    window_total: Callable[[], int]  # the checker window's total (``advanced_in_window_later``)


def _decision_locked(advance: Advance, status: str, *, window_at: datetime | None = None) -> _Held:
    """``_advance_locked``, then its merchant's chain, in one round trip with the limits' locks
    and the reads that must come after them: its receivables' invoices for the re-check (under
    the chain lock) and, with ``window_at``, the checker window's total to then (zero without)."""
    locked = _advance_in_state_locked(advance, (status,), assignments_read=True)
    # Before the re-check, not after: the room a debtor's bank-wide limit leaves is only
    # current while its row is held.
    refs = [assignment.invoice_ref for assignment in locked.assignments_by_id()]
    with debtor_limits_and_chain_locked(advance=locked):
        invoices = invoices_of_refs_later(locked.merchant, refs)
        window_total = (
            advanced_in_window_later(advance=locked, now=window_at)
            if window_at is not None
            else lambda: 0
        )
    return _Held(locked, invoices, window_total)


def _advance_in_state_locked(
    advance: Advance, statuses: tuple[str, ...], assignments_read: bool
) -> Advance:
    if assignments_read:
        locked = advance_decision_lock(advance.pk)
    else:
        locked = advance_qs_for_update().select_related("facility").get(pk=advance.pk)
    if locked.status not in statuses:
        raise WrongState(f"Advance {locked.ref} is {locked.get_status_display().lower()}.")
    return locked


def _explained(exc: AdvanceRefused | ApprovalVoid) -> str:
    if isinstance(exc, ApprovalVoid) or not exc.reasons:
        return exc.message
    per_ref = "; ".join(
        f"{ref}: {', '.join(code for code, _ in pairs)}" for ref, pairs in exc.reasons.items()
    )
    return f"{exc.message} ({per_ref})"
