"""Resolving a break: with a reason, by choosing the candidate of an ambiguous match, or, where
money must move, by proposing the journal adjustment a different senior officer confirms with
the other four-eyes changes (``financing.admin.changes``)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from financing.admin.changes import FORM_TEMPLATE
from financing.admin.formatting import refusal
from financing.admin.writes import PROPOSED, object_seen, officer_of
from financing.exceptions import FinancingError
from financing.models import Break, Payment
from financing.reconciliation.breaks import (
    ADJUSTABLE,
    RESOLVE_PERMISSION,
    break_adjust_propose,
    break_resolve,
)
from financing.reconciliation.decisions import ambiguity_decide
from ledger.models import Payout
from ledger.money import Money, MoneyError, parse_minor_units


class ResolveForm(forms.Form):
    choose = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        label="Match to",
        help_text="An ambiguous match: the candidate that is the one (posts its clearing).",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why: what you found (a bank charge, a marketplace correction). It stays on "
        "the break; with an adjustment, the senior officer who confirms reads it.",
    )
    debit = forms.ChoiceField(
        required=False,
        choices=[("", "—"), *ADJUSTABLE.items()],
        help_text="Only where money must move: the account debited…",
    )
    credit = forms.ChoiceField(
        required=False, choices=[("", "—"), *ADJUSTABLE.items()], help_text="… and credited…"
    )
    amount = forms.CharField(
        required=False, max_length=24, help_text="… by this amount, in the break's currency."
    )


class BreakResolveMixin(admin.ModelAdmin[Break]):
    """The break admin's *Resolve…* page."""

    def resolve_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/resolve/",
                self.admin_site.admin_view(self.resolve_view),
                name="financing_break_resolve",
            )
        ]

    def resolve_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Resolve a break with a reason, or propose the adjustment that resolves it."""
        brk = object_seen(self, request, object_id)
        officer = officer_of(request)
        is_open = brk.status == Break.Status.OPEN
        form = ResolveForm(request.POST or None)
        options = _options(brk)
        if options:
            choose = form.fields["choose"]
            assert isinstance(choose, forms.TypedChoiceField)
            choose.choices = [("", "—"), *options]
        else:
            del form.fields["choose"]
        if request.method == "POST" and form.is_valid():
            try:
                proposed = _resolve_or_propose(brk, officer, form.cleaned_data)
            except FinancingError as exc:
                form.add_error(None, refusal(exc))
            except MoneyError as exc:
                form.add_error("amount", str(exc))
            else:
                if proposed:
                    self.message_user(request, PROPOSED, messages.SUCCESS)
                    return HttpResponseRedirect(reverse("admin:financing_riskchange_changelist"))
                self.message_user(request, f"Resolved: {brk}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:financing_break_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Resolve {brk}",
            "summary": _summary(brk),
            "form_title": "Resolution",
            "form": form if is_open else None,
            "actions": [("_resolve", "Resolve or propose the adjustment")],
            "may_act": officer.has_perm(RESOLVE_PERMISSION) and is_open,
            "cannot_act": f"Resolved already: {brk.resolution}"
            if not is_open
            else "You do not hold the permission to resolve breaks.",
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, FORM_TEMPLATE, context)


def _resolve_or_propose(brk: Break, officer: Any, data: dict[str, Any]) -> bool:
    """Choose a candidate, resolve, or (debit, credit and amount given) propose the
    adjustment; True if proposed."""
    now = timezone.now()
    if data.get("choose") is not None:
        ambiguity_decide(
            brk=brk, option=data["choose"], officer=officer, reason=data["reason"], now=now
        )
        return False
    if not (data["debit"] or data["credit"] or data["amount"]):
        break_resolve(brk=brk, officer=officer, reason=data["reason"], now=now)
        return False
    amount = parse_minor_units(data["amount"] or "0", brk.currency or "EUR")
    break_adjust_propose(
        brk=brk,
        officer=officer,
        debit=data["debit"],
        credit=data["credit"],
        amount_minor=amount,
        reason=data["reason"],
        now=now,
    )
    return True


def _options(brk: Break) -> list[tuple[int, str]]:
    """An ambiguous break's candidate sets, as the officer chooses between them."""
    if brk.kind != Break.Kind.AMBIGUOUS_MATCH:
        return []
    model = Payment if brk.detail.get("candidate_kind") == "payment" else Payout
    choices = []
    for n, ids in enumerate(brk.detail.get("options", [])):
        rows = model.objects.filter(pk__in=ids).select_related("merchant").order_by("pk")
        choices.append((n, "; ".join(_candidate_label(row) for row in rows)))
    return choices


def _candidate_label(row: Payment | Payout) -> str:
    if isinstance(row, Payment):
        return (
            f"payment {row.end_to_end_id} to {row.merchant.legal_name}, "
            f"{Money.display(row.amount_minor, row.currency)}, sent {row.created_at:%Y-%m-%d}"
        )
    return (
        f"payout {row.ref} of {row.merchant.legal_name}, "
        f"{Money.display(row.amount_minor, row.currency)}, settled {row.settled_on:%Y-%m-%d}, "
        f"{len(row.lines)} line(s)"
    )


def _summary(brk: Break) -> str:
    parts = [brk.get_kind_display(), f"key {brk.key}"]
    if brk.merchant:
        parts.append(brk.merchant.legal_name)
    if brk.amount_minor is not None:
        parts.append(f"found {money_or_dash(brk.amount_minor, brk.currency)}")
    if brk.expected_minor is not None:
        parts.append(f"expected {money_or_dash(brk.expected_minor, brk.currency)}")
    if brk.reference:
        parts.append(f"reference {brk.reference}")
    return " · ".join(parts) + f" · found {brk.found_at:%Y-%m-%d %H:%M} UTC"


def money_or_dash(minor: int | None, currency: str) -> str:
    if minor is None:
        return "—"
    return Money.display(minor, currency) if currency else str(minor)
