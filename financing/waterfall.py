"""The settlement waterfall: how money a debtor pays on a financed receivable is split.

Pure arithmetic on integer minor units, so properties can be tested without a database:

1. late fees accrued and unpaid,
2. the unpaid discount fee — always nothing here: the fee is withheld at disbursement,
3. principal (the advance on this receivable),
4. the rest is the merchant's: released from its reserve (less recourse it owes, netted by
   the caller, which knows the merchant's balance).

What the debtor pays beyond what it owes goes to suspense. Late fees are the merchant's debt,
not the debtor's: the part of a payment that pays them is taken from the merchant's reserve on
the receivable, and beyond the reserve it becomes recourse. When the debtor owes nothing more
the receivable closes: late fees still unpaid move to the reserve (or recourse) the same way,
and whatever reserve is left is released.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReceivableBalance:
    """Where one financed receivable stands; every figure in minor units."""

    face_minor: int
    advance_minor: int
    late_fee_minor: int
    paid_minor: int = 0
    diluted_minor: int = 0
    late_fee_paid_minor: int = 0
    principal_repaid_minor: int = 0
    reserve_used_minor: int = 0

    @property
    def owed_by_debtor(self) -> int:
        return self.face_minor - self.paid_minor - self.diluted_minor

    @property
    def late_fees_due(self) -> int:
        return self.late_fee_minor - self.late_fee_paid_minor

    @property
    def principal_due(self) -> int:
        return self.advance_minor - self.principal_repaid_minor

    @property
    def reserve_left(self) -> int:
        return self.face_minor - self.advance_minor - self.reserve_used_minor

    @property
    def closed(self) -> bool:
        return self.owed_by_debtor == 0


@dataclass(frozen=True, slots=True)
class Split:
    """One payment's allocation. ``to_late_fees + to_principal + to_merchant + to_suspense`` is
    the payment; the late fees it pays come from the reserve, beyond it from recourse."""

    to_late_fees: int
    to_principal: int
    to_merchant: int
    to_suspense: int
    late_fees_from_reserve: int
    late_fees_to_recourse: int
    after: ReceivableBalance

    @property
    def applied(self) -> int:
        return self.to_late_fees + self.to_principal + self.to_merchant


@dataclass(frozen=True, slots=True)
class Closing:
    """What closing a receivable moves: unpaid late fees onto the reserve or recourse, and the
    reserve left over back to the merchant."""

    late_fees_from_reserve: int
    late_fees_to_recourse: int
    reserve_released: int
    after: ReceivableBalance


def payment_split(balance: ReceivableBalance, amount_minor: int) -> Split:
    """Split ``amount_minor`` paid by the debtor on a financed receivable.

    :raises ValueError: a payment that is not a positive integer.
    """
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise ValueError(f"A payment is a positive integer of minor units, not {amount_minor!r}.")
    applied = min(amount_minor, balance.owed_by_debtor)
    late = min(applied, balance.late_fees_due)
    principal = min(applied - late, balance.principal_due)
    rest = applied - late - principal
    from_reserve = min(late, balance.reserve_left)
    after = ReceivableBalance(
        face_minor=balance.face_minor,
        advance_minor=balance.advance_minor,
        late_fee_minor=balance.late_fee_minor,
        paid_minor=balance.paid_minor + applied,
        diluted_minor=balance.diluted_minor,
        late_fee_paid_minor=balance.late_fee_paid_minor + late,
        principal_repaid_minor=balance.principal_repaid_minor + principal,
        reserve_used_minor=balance.reserve_used_minor + from_reserve + rest,
    )
    return Split(
        to_late_fees=late,
        to_principal=principal,
        to_merchant=rest,
        to_suspense=amount_minor - applied,
        late_fees_from_reserve=from_reserve,
        late_fees_to_recourse=late - from_reserve,
        after=after,
    )


def dilution_take(balance: ReceivableBalance, amount_minor: int) -> tuple[int, ReceivableBalance]:
    """Take up to ``amount_minor`` of dilution off what the debtor owes; return the amount taken
    (the recourse it raises) and the balance after. A receivable the debtor no longer owes on
    takes none: a credit note after a return counts once."""
    taken = max(0, min(amount_minor, balance.owed_by_debtor))
    after = ReceivableBalance(
        face_minor=balance.face_minor,
        advance_minor=balance.advance_minor,
        late_fee_minor=balance.late_fee_minor,
        paid_minor=balance.paid_minor,
        diluted_minor=balance.diluted_minor + taken,
        late_fee_paid_minor=balance.late_fee_paid_minor,
        principal_repaid_minor=balance.principal_repaid_minor,
        reserve_used_minor=balance.reserve_used_minor,
    )
    return taken, after


def receivable_close(balance: ReceivableBalance) -> Closing:
    """Close a receivable the debtor owes nothing more on.

    :raises ValueError: the debtor still owes on it.
    """
    if not balance.closed:
        raise ValueError("A receivable closes only when its debtor owes nothing more.")
    late = balance.late_fees_due
    from_reserve = min(late, balance.reserve_left)
    released = balance.reserve_left - from_reserve
    after = ReceivableBalance(
        face_minor=balance.face_minor,
        advance_minor=balance.advance_minor,
        late_fee_minor=balance.late_fee_minor,
        paid_minor=balance.paid_minor,
        diluted_minor=balance.diluted_minor,
        late_fee_paid_minor=balance.late_fee_minor,
        principal_repaid_minor=balance.principal_repaid_minor,
        reserve_used_minor=balance.face_minor - balance.advance_minor,
    )
    return Closing(
        late_fees_from_reserve=from_reserve,
        late_fees_to_recourse=late - from_reserve,
        reserve_released=released,
        after=after,
    )
