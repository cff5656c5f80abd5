"""Advances in a supplier's words: statuses, and why a request or an answer was refused.

The services speak in exception types, codes and officer-facing English; a supplier reads one
plain sentence, translated. Each refusal is told by its type, never by the service's message.
"""

from __future__ import annotations

from datetime import date

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from financing.eligibility import Code, verdicts
from financing.exceptions import AdvanceRefused
from financing.models import Advance, Assignment
from merchants.models import Merchant
from portal.receivables.reasons import reasons_in_words

ADVANCE_STATUS: dict[str, Promise] = {
    Advance.Status.REQUESTED: gettext_lazy("Under review"),
    Advance.Status.REQUOTE: gettext_lazy("New price: your answer needed"),
    Advance.Status.WITHDRAWN: gettext_lazy("Withdrawn"),
    Advance.Status.APPROVED: gettext_lazy("Approved: being paid out"),
    Advance.Status.REJECTED: gettext_lazy("Turned down"),
    Advance.Status.DISBURSED: gettext_lazy("Paid out: being repaid"),
    Advance.Status.OVERDUE: gettext_lazy("Overdue"),
    Advance.Status.REPAID: gettext_lazy("Repaid"),
}

RECEIVABLE_STATUS: dict[str, Promise] = {
    Assignment.Status.HELD: gettext_lazy("In this request"),
    Assignment.Status.ASSIGNED: gettext_lazy("Financed"),
    Assignment.Status.SETTLED: gettext_lazy("Paid by the buyer"),
    Assignment.Status.RELEASED: gettext_lazy("Back with you"),
}

UNKNOWN_INVOICE = "UNKNOWN_INVOICE"  # the code financing.services.requests refuses it with

# Invoices that are each fundable may still not fit together: these codes say so.
TOGETHER: dict[str, Promise] = {
    Code.FACILITY_LIMIT: gettext_lazy(
        "Together these invoices need more than your credit line has left. Choose fewer."
    ),
    Code.DEBTOR_LIMIT: gettext_lazy(
        "Together these invoices put more on one buyer than your credit line allows. "
        "Choose fewer invoices of that buyer."
    ),
    Code.BANK_DEBTOR_LIMIT: gettext_lazy(
        "Together these invoices put more on one buyer than the bank allows. "
        "Choose fewer invoices of that buyer."
    ),
}


def refusal_in_words(
    exc: AdvanceRefused, *, merchant: Merchant, refs: list[str], today: date
) -> list[str]:
    """Say why the bank cannot price or take these invoices now, one sentence per reason.

    An invoice that is not fundable on its own gets the receivables page's sentences (judged
    again now, so the figures in them are current); a limit the invoices only break together
    gets one sentence for the lot.
    """
    sentences = [
        f"{verdict.ref}: {reason}"
        for verdict in verdicts(merchant, today, refs)
        for reason in reasons_in_words(verdict)
    ]
    sentences += [
        _("%(ref)s: not one of your invoices.") % {"ref": ref}
        for ref, pairs in exc.reasons.items()
        if any(code == UNKNOWN_INVOICE for code, _message in pairs)
    ]
    if sentences:
        return sentences
    codes = {code for pairs in exc.reasons.values() for code, _message in pairs}
    together = [str(TOGETHER[code]) for code in sorted(codes) if code in TOGETHER]
    return together or [_("These invoices cannot be financed together right now.")]
