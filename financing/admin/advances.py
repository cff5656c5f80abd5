"""Advances: the review queue, the review page with its decisions, and the exposure page.

Officers decide through ``advance_approve``, ``advance_authorize`` and ``advance_reject``; the
admin never edits an advance.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from config.admin_mixins import ReadOnlyAdminMixin
from financing.admin.formatting import merchant_cell, refusal
from financing.admin.writes import object_seen, officer_of
from financing.exceptions import FinancingError
from financing.exposure import exposure_read
from financing.models import Advance, Facility, MerchantFile
from financing.risk import grade_of
from financing.selectors import ReceivableTrail, advance_review
from financing.services.decisions import advance_approve, advance_authorize, advance_reject
from financing.settlement_selectors import RepaymentHistory, recourse_balances, repayment_history
from ledger.money import Money

logger = logging.getLogger(__name__)


class AdvanceQueueFilter(admin.SimpleListFilter):
    """Pending advances (requested, requote or approved) unless the officer asks otherwise."""

    title = "status"
    parameter_name = "queue"
    ALL = "all"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(self.ALL, "All advances"), *((str(v), str(n)) for v, n in Advance.Status.choices)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset.filter(status__in=Advance.PENDING)
        if value == self.ALL:
            return queryset
        return queryset.filter(status=value)

    def choices(self, changelist: ChangeList) -> Iterator[Any]:
        for n, choice in enumerate(super().choices(changelist)):
            if n == 0:  # the unfiltered link is the queue itself
                choice["display"] = "Open (requested, requote or approved)"
            yield choice


class NonAccrualFilter(admin.SimpleListFilter):
    """Advances with a receivable past the facility's non-accrual horizon: no late fee runs."""

    title = "non-accrual"
    parameter_name = "non_accrual"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Non-accrual")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(non_accrual_on__isnull=False)
        return queryset


@admin.register(Advance)
class AdvanceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Advance]):
    """The review queue. An advance is never edited: officers decide through the services."""

    list_display = [
        "ref",
        "merchant_name",
        "face",
        "advance",
        "fee",
        "due",
        "risk",
        "status_badge",
        "requested",
    ]
    list_filter = [
        AdvanceQueueFilter,
        NonAccrualFilter,
        ("merchant", admin.RelatedOnlyFieldListFilter),
        "currency",
    ]
    list_select_related = ["merchant"]
    search_fields = [
        "ref",
        "merchant__legal_name",
        "merchant__public_id",
        "assignments__invoice_ref",
    ]
    change_list_template = "admin/financing/advance/change_list.html"
    review_template = "admin/financing/advance/review.html"
    exposure_template = "admin/financing/advance/exposure.html"

    @admin.display(description="face", ordering="face_minor")
    def face(self, advance: Advance) -> str:
        return Money.display(advance.face_minor, advance.currency)

    @admin.display(description="advance", ordering="advance_minor")
    def advance(self, advance: Advance) -> str:
        return Money.display(advance.advance_minor, advance.currency)

    @admin.display(description="fee", ordering="fee_minor")
    def fee(self, advance: Advance) -> str:
        return Money.display(advance.fee_minor, advance.currency)

    @admin.display(description="risk", ordering="risk_score")
    def risk(self, advance: Advance) -> str:
        return f"{advance.risk_score} ({grade_of(advance.risk_score)})"

    @admin.display(description="merchant", ordering="merchant__legal_name")
    def merchant_name(self, advance: Advance) -> str:
        return merchant_cell(advance.merchant)

    @admin.display(description="due", ordering="due_date")
    def due(self, advance: Advance) -> str:
        return advance.due_date.isoformat()

    @admin.display(description="status", ordering="status")
    def status_badge(self, advance: Advance) -> str:
        return format_html(
            '<span class="chainfin-status chainfin-status-{}" title="{}">{}</span>',
            advance.status,
            advance.get_status_display(),
            advance.status.capitalize(),
        )

    @admin.display(description="requested", ordering="requested_at")
    def requested(self, advance: Advance) -> str:
        return f"{timezone.localtime(advance.requested_at):%Y-%m-%d}"

    def get_urls(self) -> list[URLPattern]:
        site = self.admin_site
        own = [
            path(
                "exposure/", site.admin_view(self.exposure_view), name="financing_advance_exposure"
            ),
            path(
                "<path:object_id>/approve/",
                site.admin_view(self.approve_view),
                name="financing_advance_approve",
            ),
            path(
                "<path:object_id>/reject/",
                site.admin_view(self.reject_view),
                name="financing_advance_reject",
            ),
            path(
                "<path:object_id>/authorize/",
                site.admin_view(self.authorize_view),
                name="financing_advance_authorize",
            ),
        ]
        return [*own, *super().get_urls()]

    def _advance_or_404(self, request: HttpRequest, object_id: str) -> Advance:
        advance = object_seen(self, request, object_id)
        return advance

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The review page: quote, risk, evidence, live eligibility, decision, notices and,
        once disbursed, how it is being repaid."""
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied  # decisions go to their own URLs, through the services
        advance = self._advance_or_404(request, object_id)
        user = officer_of(request)
        review = advance_review(advance=advance, today=timezone.now().date())
        status = advance.status
        approver_is_me = advance.approved_by_id is not None and advance.approved_by_id == user.pk
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Advance {advance.ref}",
            "subtitle": advance.merchant.legal_name,
            "advance": advance,
            "review": review,
            "quote": _quote_rows(advance),
            "net": Money.display(advance.advance_minor - advance.fee_minor, advance.currency),
            "threshold": Money.display(advance.facility.checker_threshold_minor, advance.currency),
            "grade": grade_of(advance.risk_score),
            "factors": [_factor_row(f) for f in advance.risk_factors or []],
            "trails": [_trail_row(trail, advance.currency) for trail in review.trails],
            **_repayment(advance, repayment_history(advance=advance)),
            "can_approve": status == Advance.Status.REQUESTED
            and user.has_perm("financing.approve_advance"),
            "can_reject": status in Advance.PENDING and user.has_perm("financing.approve_advance"),
            "can_authorize": status == Advance.Status.APPROVED
            and user.has_perm("financing.authorize_advance")
            and not approver_is_me,
            "approver_is_me": approver_is_me and status == Advance.Status.APPROVED,
            "facility_url": self._admin_url(request, advance.facility),
            "merchant_url": self._admin_url(
                request, MerchantFile.objects.get(pk=advance.merchant_id)
            ),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.review_template, context)

    @method_decorator(require_POST)
    def approve_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        note = request.POST.get("note", "").strip()
        merchant_note = request.POST.get("merchant_note", "").strip()
        return self._decide(
            request,
            object_id,
            lambda advance, officer, now: advance_approve(
                advance=advance, officer=officer, now=now, note=note, merchant_note=merchant_note
            ),
        )

    @method_decorator(require_POST)
    def reject_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        note = request.POST.get("note", "").strip()
        return self._decide(
            request,
            object_id,
            lambda advance, officer, now: advance_reject(
                advance=advance, officer=officer, now=now, note=note
            ),
        )

    @method_decorator(require_POST)
    def authorize_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._decide(
            request,
            object_id,
            lambda advance, officer, now: advance_authorize(
                advance=advance, officer=officer, now=now
            ),
        )

    def _decide(
        self,
        request: HttpRequest,
        object_id: str,
        decide: Callable[[Advance, User, Any], Advance],
    ) -> HttpResponse:
        """One service call; its refusal becomes an error message on the review page."""
        advance = self._advance_or_404(request, object_id)
        try:
            decided = decide(advance, officer_of(request), timezone.now())
        except FinancingError as exc:
            self.message_user(request, refusal(exc), messages.ERROR)
        except IntegrityError as exc:
            # A constraint the service did not translate: the database kept the rule, so the
            # officer hears which one instead of seeing an error page.
            logger.exception("advance %s: decision refused by the database", advance.ref)
            self.message_user(
                request, f"The database refused the decision: {exc}".splitlines()[0], messages.ERROR
            )
        else:
            self.message_user(request, _decided(decided), messages.SUCCESS)
        return HttpResponseRedirect(
            reverse("admin:financing_advance_change", args=[quote(advance.pk)])
        )

    def _admin_url(self, request: HttpRequest, obj: Facility | MerchantFile) -> str | None:
        """The admin page of ``obj`` when the user may see it; None hides the link."""
        model = type(obj)
        if not self.admin_site.is_registered(model):
            return None
        if not self.admin_site.get_model_admin(model).has_view_permission(request, obj):
            return None
        meta = model._meta
        return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[quote(obj.pk)])

    def exposure_view(self, request: HttpRequest) -> HttpResponse:
        """Exposure by merchant and by debtor; read-only, for every role."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        exposure = exposure_read()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Exposure",
            "merchants": [
                {
                    "row": m,
                    "outstanding": Money.display(m.outstanding_minor, m.currency),
                    "late_fees": Money.display(m.late_fees_minor, m.currency),
                    "committed": Money.display(m.committed_minor, m.currency),
                    "limit": Money.display(m.limit_minor, m.currency)
                    if m.limit_minor
                    else "no facility",
                    "utilisation": "—" if m.utilisation is None else f"{m.utilisation} %",
                }
                for m in exposure.merchants
            ],
            "debtors": [
                {
                    "row": d,
                    "advance": Money.display(d.advance_minor, d.currency),
                    "face": Money.display(d.face_minor, d.currency),
                }
                for d in exposure.debtors
            ],
            "totals": [
                {
                    "currency": t.currency,
                    "outstanding": Money.display(t.outstanding_minor, t.currency),
                    "committed": Money.display(t.committed_minor, t.currency),
                    "limit": Money.display(t.limit_minor, t.currency),
                    "utilisation": "—" if t.utilisation is None else f"{t.utilisation} %",
                    "debtors": Money.display(t.debtor_advance_minor, t.currency),
                }
                for t in exposure.totals
            ],
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.exposure_template, context)


def _decided(advance: Advance) -> str:
    if advance.status == Advance.Status.DISBURSED:
        return f"Advance {advance.ref} approved and disbursed."
    if advance.status == Advance.Status.APPROVED:
        return f"Advance {advance.ref} approved; a second officer must authorize it."
    return f"Advance {advance.ref} is now {advance.get_status_display().lower()}."


def _quote_rows(advance: Advance) -> list[tuple[str, str]]:
    currency = advance.currency
    rows = [
        ("Face value", Money.display(advance.face_minor, currency)),
        ("Advance", Money.display(advance.advance_minor, currency)),
        ("Fee", Money.display(advance.fee_minor, currency)),
        (
            "Net paid out (advance - fee)",
            Money.display(advance.advance_minor - advance.fee_minor, currency),
        ),
        ("Reserve (face - advance)", Money.display(advance.reserve_minor, currency)),
        ("Days (longest; mean)", f"{advance.days}; {advance.mean_days}"),
        ("Due date", advance.due_date.isoformat()),
        ("APR", f"{advance.apr} %"),
        (
            "Price",
            f"for {advance.priced_on.isoformat()}, until "
            f"{advance.quote_expires_at:%Y-%m-%d %H:%M %Z}; "
            + (
                "accepted by the merchant"
                if advance.accepted_hash == advance.price_hash
                else "new price awaiting the merchant (requote)"
            ),
        ),
    ]
    if advance.late_fee_minor:
        rows.append(("Late fees accrued", Money.display(advance.late_fee_minor, currency)))
    if advance.non_accrual_on:
        rows.append(("Non-accrual since", advance.non_accrual_on.isoformat()))
    return rows


def _factor_row(factor: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": str(factor.get("name", "")).replace("_", " "),
        "value": factor.get("value", ""),
        "points": factor.get("points", ""),
        "max_points": factor.get("max_points", ""),
        "explanation": factor.get("explanation", ""),
    }


def _repayment(advance: Advance, history: RepaymentHistory) -> dict[str, Any]:
    """The waterfall of every payout line applied to the advance, its reserve released, and
    the recourse its merchant still owes in the advance's currency."""
    currency = advance.currency

    def shown(minor: int) -> str:
        return Money.display(minor, currency)

    owed = next(
        (
            r.open_minor
            for r in recourse_balances(merchant_id=advance.merchant_id)
            if r.currency == currency
        ),
        0,
    )
    return {
        "repayment_lines": [
            {
                "row": line,
                "source": "suspense allocation"
                if line.payout_entry.type == "suspense.allocated"
                else "payout",
                "amount": shown(line.amount_minor),
                "late_fees": shown(line.to_late_fees_minor),
                "principal": shown(line.to_principal_minor),
                "to_merchant": shown(line.to_merchant_minor),
                "netted": shown(line.recourse_netted_minor),
                "suspense": shown(line.to_suspense_minor),
            }
            for line in history.lines
        ],
        "repayment_totals": {
            "principal": shown(sum(line.to_principal_minor for line in history.lines)),
            "late_fees": shown(sum(line.to_late_fees_minor for line in history.lines)),
            "released": shown(sum(r.amount_minor for r in history.releases)),
        },
        "releases": [
            {
                "row": release,
                "amount": shown(release.amount_minor),
                "netted": shown(release.recourse_netted_minor),
            }
            for release in history.releases
        ],
        "recourse_owed": shown(max(owed, 0)),
        "recourse_owes": owed > 0,
    }


def _trail_row(trail: ReceivableTrail, currency: str) -> dict[str, Any]:
    assignment = trail.assignment
    return {
        "trail": trail,
        "face": Money.display(assignment.face_minor, currency),
        "advance": Money.display(assignment.advance_minor, currency),
    }
