"""Why a receivable is not fundable, in a supplier's words (English and Chinese).

The eligibility rules (financing.eligibility) speak in codes and officer-facing sentences;
a supplier reads one plain sentence per code, translated, with its figures filled in. A code
without a sentence here fails tests/portal/test_reasons.py.
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from financing.eligibility import Code, Verdict

REASONS: dict[Code, Promise] = {
    Code.NO_ORDER_LINK: _(
        "The invoice does not say which order it bills. The marketplace must link it to an order."
    ),
    Code.NO_ORDER: _("The order %(order)s this invoice bills has not reached us."),
    Code.ORDER_CANCELLED: _("The order %(order)s was cancelled."),
    Code.CURRENCY_MISMATCH: _("The invoice and its order are in different currencies."),
    Code.AMOUNT_EXCEEDS_ORDER: _("The invoice asks for more than the order was worth."),
    Code.ORDER_OVER_INVOICED: _(
        "Together with earlier invoices, this one bills more than the order %(order)s was worth."
    ),
    Code.NO_DELIVERY: _("The goods of order %(order)s have not been delivered yet."),
    Code.NOT_ALL_DELIVERED: _("Some goods of order %(order)s are still on their way."),
    Code.RETURNED: _("Goods of order %(order)s were sent back."),
    Code.CREDITED: _("A credit note was issued against this invoice."),
    Code.PAID: _("The buyer has already paid (part of) this invoice."),
    Code.NO_FACILITY: _("You have no credit line in %(currency)s with the bank."),
    Code.PAST_DUE: _("The invoice was due on %(due)s; overdue invoices cannot be financed."),
    Code.TOO_CLOSE_TO_DUE: _("The invoice is due too soon (%(due)s) to be financed."),
    Code.TENOR_TOO_LONG: _("The invoice is due too far ahead (%(due)s) for your credit line."),
    Code.MERCHANT_INACTIVE: _("Your account with the bank is not active."),
    Code.KYC_NOT_VERIFIED: _("The bank has not finished checking your company's identity."),
    Code.BLACKLISTED: _("New advances are paused until the bank lifts the pause."),
    Code.FACILITY_LIMIT: _("Your credit line has not enough room left for this invoice."),
    Code.DEBTOR_LIMIT: _("You have already financed as much as allowed on the buyer %(debtor)s."),
    Code.BANK_DEBTOR_LIMIT: _("The bank has reached its limit on the buyer %(debtor)s."),
    Code.ALREADY_ASSIGNED: _("This invoice is already part of an advance."),
    Code.ASSIGNED_ON_CHAIN: _("This invoice was financed before; it cannot be financed again."),
    Code.DUPLICATE_INVOICE: _(
        "An invoice with this number reached us before; the bank is checking it."
    ),
    Code.ASSIGNED_ELSEWHERE: _(
        "The invoice is payable to someone else: it was sold or pledged before."
    ),
}


def reasons_in_words(verdict: Verdict) -> list[str]:
    """One translated sentence per reason the verdict gives, in the active language."""
    values = {
        "order": verdict.order_ref or "—",
        "currency": verdict.currency,
        "due": verdict.due_date.isoformat(),
        "debtor": verdict.debtor_name,
    }
    return [str(REASONS[reason.code]) % values for reason in verdict.reasons]
