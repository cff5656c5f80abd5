"""The bank officers' financing admin: review queue, maker-checker, facilities, blacklist, exposure.

No form here saves a financing row. Every change goes through ``financing.services`` with the
signed-in officer, and the service checks the officer's permission again: a button is shown
only to those who may press it, but a refusal from the service is what stops everyone else,
and it is shown as an admin message, never as an error page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.db.models import F, QuerySet
from django.forms import ModelForm
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from financing.exceptions import AdvanceRefused, FinancingError
from financing.models import (
    Advance,
    Assignment,
    AssignmentNotice,
    Blacklisting,
    Facility,
    FacilityChange,
    Receivable,
    WebhookEndpoint,
)
from financing.risk import grade_of
from financing.selectors import ReceivableTrail, advance_review, exposure_read
from financing.services.blacklist import blacklist_add, blacklist_lift
from financing.services.decisions import advance_approve, advance_authorize, advance_reject
from financing.services.facilities import FACILITY_TERMS, facility_change, facility_open
from ledger.money import MoneyError, currency_exponent, format_minor_units, parse_minor_units
from merchants.models import Merchant

logger = logging.getLogger(__name__)

MONEY_TERMS = ("limit_minor", "checker_threshold_minor")
_BASIS_POINT_TERMS = ("advance_rate_bp", "annual_rate_bp", "debtor_cap_bp", "late_fee_rate_bp")


def money(minor: int | None, currency: str) -> str:
    if minor is None:
        return "—"
    try:
        return f"{format_minor_units(minor, currency)} {currency}"
    except MoneyError:  # a currency the money module does not know: show what is stored
        return f"{minor} (minor units) {currency}"


def percent_of_bp(bp: int) -> str:
    return f"{Decimal(bp) / 100:.2f} %"


def _officer(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied
    return user


def _refusal(exc: FinancingError) -> str:
    """The service's sentence, and for a refused advance each invoice's reasons too."""
    if isinstance(exc, AdvanceRefused) and exc.reasons:
        detail = "; ".join(
            f"{ref}: " + ", ".join(f"{code} ({message})" for code, message in pairs)
            for ref, pairs in exc.reasons.items()
        )
        return f"{exc.message} {detail}"
    return exc.message


class _ReadOnly:
    """Rows written by services only: the admin shows them and changes nothing."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# Advances: the review queue --------------------------------------------------------------------


class AdvanceQueueFilter(admin.SimpleListFilter):
    """Open advances (requested or approved) unless the officer asks for another status."""

    title = "status"
    parameter_name = "queue"
    ALL = "all"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(self.ALL, "All advances"), *((str(v), str(n)) for v, n in Advance.Status.choices)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset.filter(status__in=Advance.OPEN)
        if value == self.ALL:
            return queryset
        return queryset.filter(status=value)

    def choices(self, changelist: ChangeList) -> Iterator[Any]:
        for n, choice in enumerate(super().choices(changelist)):
            if n == 0:  # the unfiltered link is the queue itself
                choice["display"] = "Open (requested or approved)"
            yield choice


@admin.register(Advance)
class AdvanceAdmin(_ReadOnly, admin.ModelAdmin[Advance]):
    """The review queue. An advance is never edited: officers decide through the services."""

    list_display = [
        "ref",
        "merchant",
        "face",
        "advance",
        "fee",
        "due_date",
        "risk",
        "status",
        "requested_at",
    ]
    list_filter = [AdvanceQueueFilter, ("merchant", admin.RelatedOnlyFieldListFilter), "currency"]
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
        return money(advance.face_minor, advance.currency)

    @admin.display(description="advance", ordering="advance_minor")
    def advance(self, advance: Advance) -> str:
        return money(advance.advance_minor, advance.currency)

    @admin.display(description="fee", ordering="fee_minor")
    def fee(self, advance: Advance) -> str:
        return money(advance.fee_minor, advance.currency)

    @admin.display(description="risk score", ordering="risk_score")
    def risk(self, advance: Advance) -> str:
        return f"{advance.risk_score} ({grade_of(advance.risk_score)})"

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
        advance = self.get_object(request, unquote(object_id))
        if advance is None:
            raise Http404(f"No advance {object_id}.")
        if not self.has_view_permission(request, advance):
            raise PermissionDenied
        return advance

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The review page: quote, risk, evidence, live eligibility, decision and notices."""
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied  # decisions go to their own URLs, through the services
        advance = self._advance_or_404(request, object_id)
        user = _officer(request)
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
            "net": money(advance.advance_minor - advance.fee_minor, advance.currency),
            "threshold": money(advance.facility.checker_threshold_minor, advance.currency),
            "grade": grade_of(advance.risk_score),
            "factors": [_factor_row(f) for f in advance.risk_factors or []],
            "trails": [_trail_row(trail, advance.currency) for trail in review.trails],
            "can_approve": status == Advance.Status.REQUESTED
            and user.has_perm("financing.approve_advance"),
            "can_reject": status in Advance.OPEN and user.has_perm("financing.approve_advance"),
            "can_authorize": status == Advance.Status.APPROVED
            and user.has_perm("financing.authorize_advance")
            and not approver_is_me,
            "approver_is_me": approver_is_me and status == Advance.Status.APPROVED,
            "facility_url": self._admin_url(request, advance.facility),
            "merchant_url": self._admin_url(request, advance.merchant),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.review_template, context)

    @method_decorator(require_POST)
    def approve_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        note = request.POST.get("note", "").strip()
        return self._decide(
            request,
            object_id,
            lambda advance, officer, now: advance_approve(
                advance=advance, officer=officer, now=now, note=note
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
            decided = decide(advance, _officer(request), timezone.now())
        except FinancingError as exc:
            self.message_user(request, _refusal(exc), messages.ERROR)
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

    def _admin_url(self, request: HttpRequest, obj: Facility | Merchant) -> str | None:
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
                    "outstanding": money(m.outstanding_minor, m.currency),
                    "late_fees": money(m.late_fees_minor, m.currency),
                    "committed": money(m.committed_minor, m.currency),
                    "limit": money(m.limit_minor, m.currency) if m.limit_minor else "no facility",
                    "utilisation": "—" if m.utilisation is None else f"{m.utilisation} %",
                }
                for m in exposure.merchants
            ],
            "debtors": [
                {
                    "row": d,
                    "advance": money(d.advance_minor, d.currency),
                    "face": money(d.face_minor, d.currency),
                }
                for d in exposure.debtors
            ],
            "totals": [
                {
                    "currency": t.currency,
                    "outstanding": money(t.outstanding_minor, t.currency),
                    "committed": money(t.committed_minor, t.currency),
                    "limit": money(t.limit_minor, t.currency),
                    "utilisation": "—" if t.utilisation is None else f"{t.utilisation} %",
                    "debtors": money(t.debtor_advance_minor, t.currency),
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
        ("Face value", money(advance.face_minor, currency)),
        ("Advance", money(advance.advance_minor, currency)),
        ("Fee", money(advance.fee_minor, currency)),
        (
            "Net paid out (advance - fee)",
            money(advance.advance_minor - advance.fee_minor, currency),
        ),
        ("Reserve (face - advance)", money(advance.reserve_minor, currency)),
        ("Days", str(advance.days)),
        ("Due date", advance.due_date.isoformat()),
        ("APR", f"{advance.apr} %"),
    ]
    if advance.late_fee_minor:
        rows.append(("Late fees accrued", money(advance.late_fee_minor, currency)))
    return rows


def _factor_row(factor: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": str(factor.get("name", "")).replace("_", " "),
        "value": factor.get("value", ""),
        "points": factor.get("points", ""),
        "max_points": factor.get("max_points", ""),
        "explanation": factor.get("explanation", ""),
    }


def _trail_row(trail: ReceivableTrail, currency: str) -> dict[str, Any]:
    assignment = trail.assignment
    return {
        "trail": trail,
        "face": money(assignment.face_minor, currency),
        "advance": money(assignment.advance_minor, currency),
    }


# Facilities ------------------------------------------------------------------------------------


class FacilityForm(ModelForm[Facility]):
    """Terms of a credit line; amounts in the facility's currency, rates in basis points.

    The form validates; ``FacilityAdmin.save_model`` hands the result to ``facility_open`` or
    ``facility_change``, which write the facility and its audit row together.
    """

    limit_minor = forms.CharField(
        label="Limit", help_text="In the facility's currency, e.g. 100000.00."
    )
    checker_threshold_minor = forms.CharField(
        label="Second officer above",
        initial="5000",
        help_text="Advances above this amount need a second officer to authorize them.",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why the line opens or changes; it stays in the facility's audit trail.",
    )

    class Meta:
        model = Facility
        fields = ["merchant", "currency", *FACILITY_TERMS]
        labels = {
            "advance_rate_bp": "Advance rate (basis points)",
            "annual_rate_bp": "Annual rate (basis points)",
            "debtor_cap_bp": "Per-debtor cap (basis points of the limit)",
            "late_fee_rate_bp": "Late fee rate (basis points a year)",
            "max_tenor_days": "Longest tenor (days)",
            "min_days_to_due": "Shortest time to due (days)",
            "blacklist_after_days": "Blacklist when overdue for (days)",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.term_changes: dict[str, Any] = {}
        if self.instance.pk is not None:
            for name in MONEY_TERMS:
                amount = getattr(self.instance, name)
                self.initial[name] = format_minor_units(amount, self.instance.currency)

    def clean_currency(self) -> str:
        currency = str(self.cleaned_data.get("currency", "")).strip().upper()
        try:
            currency_exponent(currency)
        except MoneyError as exc:
            raise forms.ValidationError(str(exc)) from None
        return currency

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        currency = self.instance.currency if self.instance.pk else cleaned.get("currency")
        for name in MONEY_TERMS:
            if name not in cleaned:
                continue
            if not currency:
                self.add_error(name, "Choose the facility's currency first.")
                continue
            try:
                cleaned[name] = parse_minor_units(str(cleaned[name]).strip(), currency)
            except MoneyError as exc:
                self.add_error(name, str(exc))
        if self.instance.pk is None or self.errors:
            return cleaned
        self.term_changes = {
            name: cleaned[name]
            for name in FACILITY_TERMS
            if name in cleaned and cleaned[name] != getattr(self.instance, name)
        }
        if not self.term_changes:
            raise forms.ValidationError("No term changed: there is nothing to record.")
        limit = self.term_changes.get("limit_minor")
        if limit is not None and limit < self.instance.committed_minor:
            self.add_error(
                "limit_minor",
                f"Advances already commit {self._committed()}; the limit cannot go below that.",
            )
        return cleaned

    def _committed(self) -> str:
        return money(self.instance.committed_minor, self.instance.currency)


_REFUSED = "_financing_admin_refused"


@admin.register(Facility)
class FacilityAdmin(admin.ModelAdmin[Facility]):
    """Credit lines. Opening and changing go through the services, each with a written reason."""

    form = FacilityForm
    list_display = [
        "merchant",
        "currency",
        "limit",
        "committed",
        "utilisation",
        "advance_rate",
        "annual_rate",
        "checker_threshold",
        "active",
        "version",
    ]
    list_filter = ["active", "currency"]
    list_select_related = ["merchant"]
    search_fields = ["merchant__legal_name", "merchant__public_id"]
    autocomplete_fields = ["merchant"]

    def has_delete_permission(self, request: HttpRequest, obj: Facility | None = None) -> bool:
        return False  # a line is closed (active off), never deleted: advances point at it

    @admin.display(description="limit", ordering="limit_minor")
    def limit(self, facility: Facility) -> str:
        return money(facility.limit_minor, facility.currency)

    @admin.display(description="committed", ordering="committed_minor")
    def committed(self, facility: Facility) -> str:
        return money(facility.committed_minor, facility.currency)

    @admin.display(description="second officer above", ordering="checker_threshold_minor")
    def checker_threshold(self, facility: Facility) -> str:
        return money(facility.checker_threshold_minor, facility.currency)

    @admin.display(description="utilisation")
    def utilisation(self, facility: Facility) -> str:
        if not facility.limit_minor:
            return "—"
        share = Decimal(facility.committed_minor) * 100 / facility.limit_minor
        return f"{share.quantize(Decimal('0.1'))} %"

    @admin.display(description="advance rate", ordering="advance_rate_bp")
    def advance_rate(self, facility: Facility) -> str:
        return percent_of_bp(facility.advance_rate_bp)

    @admin.display(description="annual rate", ordering="annual_rate_bp")
    def annual_rate(self, facility: Facility) -> str:
        return percent_of_bp(facility.annual_rate_bp)

    @admin.display(description="audit trail")
    def audit_trail(self, facility: Facility) -> SafeString:
        changes = facility.changes.select_related("officer").order_by("-changed_at", "-id")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{change.changed_at:%Y-%m-%d %H:%M}",
                    change.officer.get_username(),
                    change.reason,
                    _diff_html(change.before, change.after, facility.currency),
                )
                for change in changes
            ),
        )
        return format_html(
            '<table class="facility-audit"><thead><tr><th>When</th><th>Officer</th>'
            "<th>Reason</th><th>What changed</th></tr></thead><tbody>{}</tbody></table>",
            rows or format_html('<tr><td colspan="4">No changes recorded.</td></tr>'),
        )

    def _editable(self, request: HttpRequest, obj: Facility | None) -> bool:
        if obj is None:
            return self.has_add_permission(request)
        return self.has_change_permission(request, obj)

    def get_fieldsets(self, request: HttpRequest, obj: Facility | None = None) -> Any:
        editable = self._editable(request, obj)
        amounts = list(MONEY_TERMS) if editable else ["limit", "checker_threshold"]
        terms = [
            "merchant",
            "currency",
            amounts[0],
            "advance_rate_bp",
            "annual_rate_bp",
            "day_count",
            "max_tenor_days",
            "min_days_to_due",
            "debtor_cap_bp",
            "late_fee_rate_bp",
            "blacklist_after_days",
            amounts[1],
            "active",
        ]
        fieldsets: list[tuple[str | None, dict[str, Any]]] = [(None, {"fields": terms})]
        if obj is not None:
            fieldsets.append(
                ("Standing", {"fields": ["committed", "utilisation", "version", "created_at"]})
            )
        if editable:
            fieldsets.append(("Why", {"fields": ["reason"]}))
        if obj is not None:
            fieldsets.append(("Audit trail", {"fields": ["audit_trail"]}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Facility | None = None) -> Any:
        if obj is None:
            return []
        shown = ["committed", "utilisation", "version", "created_at", "audit_trail"]
        if not self._editable(request, obj):
            shown += ["limit", "checker_threshold"]
        return ["merchant", "currency", *shown]

    def save_model(
        self, request: HttpRequest, obj: Facility, form: ModelForm[Facility], change: bool
    ) -> None:
        """Open or change the line through the services; a refusal returns to the form."""
        assert isinstance(form, FacilityForm)
        reason = form.cleaned_data["reason"].strip()
        officer, now = _officer(request), timezone.now()
        try:
            if change:
                saved = facility_change(
                    facility=obj, officer=officer, reason=reason, now=now, changes=form.term_changes
                )
            else:
                terms = {n: form.cleaned_data[n] for n in FACILITY_TERMS if n in form.cleaned_data}
                saved = facility_open(
                    merchant=form.cleaned_data["merchant"],
                    currency=form.cleaned_data["currency"],
                    officer=officer,
                    reason=reason,
                    now=now,
                    terms=terms,
                )
        except FinancingError as exc:
            setattr(request, _REFUSED, True)
            self.message_user(request, _refusal(exc), messages.ERROR)
            return
        obj.pk = saved.pk
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # nothing related is edited here; the audit row is the service's

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if not getattr(request, _REFUSED, False):
            return super().log_addition(request, obj, message)
        return None

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if not getattr(request, _REFUSED, False):
            return super().log_change(request, obj, message)
        return None

    def response_add(
        self, request: HttpRequest, obj: Facility, post_url_continue: str | None = None
    ) -> HttpResponse:
        if getattr(request, _REFUSED, False):
            return HttpResponseRedirect(request.get_full_path())
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request: HttpRequest, obj: Facility) -> HttpResponse:
        if getattr(request, _REFUSED, False):
            return HttpResponseRedirect(request.get_full_path())
        return super().response_change(request, obj)


def _diff_html(before: Mapping[str, Any], after: Mapping[str, Any], currency: str) -> SafeString:
    def shown(name: str, value: Any) -> str:
        if value is None:
            return "—"
        if name in MONEY_TERMS and isinstance(value, int):
            return money(value, currency)
        if name in _BASIS_POINT_TERMS and isinstance(value, int):
            return f"{percent_of_bp(value)} ({value} bp)"
        return str(value)

    others = sorted((set(before) | set(after)) - set(FACILITY_TERMS))
    names = [n for n in (*FACILITY_TERMS, *others) if before.get(n) != after.get(n)]
    if not names:
        return format_html("{}", "no term changed")
    verb = "opened with" if not before else ""
    return format_html(
        "{}<ul class='facility-diff'>{}</ul>",
        verb,
        format_html_join(
            "",
            "<li><b>{}</b>: {} → {}</li>",
            ((n, shown(n, before.get(n)), shown(n, after.get(n))) for n in names),
        ),
    )


@admin.register(FacilityChange)
class FacilityChangeAdmin(_ReadOnly, admin.ModelAdmin[FacilityChange]):
    list_display = ["changed_at", "facility", "officer", "reason", "diff"]
    list_filter = ["facility__currency"]
    list_select_related = ["facility__merchant", "officer"]
    search_fields = ["facility__merchant__legal_name", "reason", "officer__username"]
    fields = ["facility", "officer", "changed_at", "reason", "diff"]
    readonly_fields = ["diff"]

    @admin.display(description="what changed")
    def diff(self, change: FacilityChange) -> SafeString:
        return _diff_html(change.before, change.after, change.facility.currency)


# Blacklist -------------------------------------------------------------------------------------


class BlacklistForm(forms.Form):
    merchant = forms.ModelChoiceField(queryset=Merchant.objects.order_by("legal_name"))
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="The merchant will read it; an officer lifting it later will too.",
    )


class LiftForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why new advances may be requested again.",
    )


@admin.register(Blacklisting)
class BlacklistingAdmin(_ReadOnly, admin.ModelAdmin[Blacklisting]):
    """Active blacklistings first. Adding and lifting go through the services, with a reason."""

    list_display = [
        "merchant",
        "is_active",
        "reason",
        "created_at",
        "by",
        "advance",
        "lifted_at",
        "lifted_by",
        "lift_reason",
        "lift_link",
    ]
    list_filter = [("lifted_at", admin.EmptyFieldListFilter)]
    list_select_related = ["merchant", "created_by", "lifted_by", "advance"]
    search_fields = ["merchant__legal_name", "merchant__public_id", "reason", "lift_reason"]
    # Active first. django-stubs types ordering as names; Django takes expressions too.
    ordering = [F("lifted_at").desc(nulls_first=True), "-created_at", "-id"]  # type: ignore[list-item]
    change_list_template = "admin/financing/blacklisting/change_list.html"
    change_form_template = "admin/financing/blacklisting/change_form.html"
    form_template = "admin/financing/blacklisting/form.html"

    @admin.display(description="active", boolean=True)
    def is_active(self, blacklisting: Blacklisting) -> bool:
        return blacklisting.lifted_at is None

    @admin.display(description="by")
    def by(self, blacklisting: Blacklisting) -> str:
        if blacklisting.created_by is None:
            return "overdue sweep"
        return blacklisting.created_by.get_username()

    @admin.display(description="")
    def lift_link(self, blacklisting: Blacklisting) -> str:
        if blacklisting.lifted_at is not None:
            return ""
        url = reverse("admin:financing_blacklisting_lift", args=[quote(blacklisting.pk)])
        return format_html('<a href="{}">Lift…</a>', url)

    def get_list_display(self, request: HttpRequest) -> Any:
        columns = list(self.list_display)
        if not _officer(request).has_perm("financing.manage_blacklist"):
            columns.remove("lift_link")
        return columns

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {"may_manage": _officer(request).has_perm("financing.manage_blacklist")}
        return super().changelist_view(request, context | (extra_context or {}))

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = {"may_manage": _officer(request).has_perm("financing.manage_blacklist")}
        return super().change_view(request, object_id, form_url, context | (extra_context or {}))

    def get_urls(self) -> list[URLPattern]:
        site = self.admin_site
        own = [
            path(
                "blacklist/",
                site.admin_view(self.blacklist_view),
                name="financing_blacklisting_blacklist",
            ),
            path(
                "<path:object_id>/lift/",
                site.admin_view(self.lift_view),
                name="financing_blacklisting_lift",
            ),
        ]
        return [*own, *super().get_urls()]

    def blacklist_view(self, request: HttpRequest) -> HttpResponse:
        """Blacklist a merchant: no new advances until an officer lifts it."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = BlacklistForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                blacklisting = blacklist_add(
                    merchant=form.cleaned_data["merchant"],
                    officer=_officer(request),
                    reason=form.cleaned_data["reason"].strip(),
                    now=timezone.now(),
                )
            except FinancingError as exc:
                form.add_error(None, _refusal(exc))
            else:
                self.message_user(
                    request, f"{blacklisting.merchant.legal_name} is blacklisted.", messages.SUCCESS
                )
                return HttpResponseRedirect(reverse("admin:financing_blacklisting_changelist"))
        return self._form_page(request, form, title="Blacklist a merchant", action="Blacklist")

    def lift_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Lift a blacklisting, with a written reason."""
        blacklisting = self.get_object(request, unquote(object_id))
        if blacklisting is None:
            raise Http404(f"No blacklisting {object_id}.")
        if not self.has_view_permission(request, blacklisting):
            raise PermissionDenied
        form = LiftForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                blacklist_lift(
                    blacklisting=blacklisting,
                    officer=_officer(request),
                    reason=form.cleaned_data["reason"].strip(),
                    now=timezone.now(),
                )
            except FinancingError as exc:
                form.add_error(None, _refusal(exc))
            else:
                self.message_user(
                    request,
                    f"The blacklisting of {blacklisting.merchant.legal_name} is lifted.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:financing_blacklisting_changelist"))
        return self._form_page(
            request,
            form,
            title=f"Lift the blacklisting of {blacklisting.merchant.legal_name}",
            action="Lift",
            blacklisting=blacklisting,
        )

    def _form_page(
        self, request: HttpRequest, form: forms.Form, *, title: str, action: str, **extra: Any
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "form": form,
            "action": action,
            "may_manage": _officer(request).has_perm("financing.manage_blacklist"),
            **extra,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.form_template, context)


# Webhooks, notices, receivables, assignments ---------------------------------------------------


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin[WebhookEndpoint]):
    """Where notices of assignment go. The signing secret is shown whole once, on creation."""

    list_display = ["marketplace", "url", "active", "masked_secret"]
    list_filter = ["active"]
    list_select_related = ["marketplace"]
    search_fields = ["marketplace__code", "marketplace__name", "url"]
    fields = ["marketplace", "url", "active", "masked_secret"]

    @admin.display(description="signing secret")
    def masked_secret(self, endpoint: WebhookEndpoint) -> str:
        if not endpoint.secret:
            return "—"
        return f"{endpoint.secret[:4]}{'•' * 12} (shown once, when the endpoint was created)"

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "url":
            kwargs["assume_scheme"] = "https"  # a notice of assignment never travels in clear
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_readonly_fields(
        self, request: HttpRequest, obj: WebhookEndpoint | None = None
    ) -> list[str]:
        return ["masked_secret"] if obj is None else ["marketplace", "masked_secret"]

    def get_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> Any:
        return ["marketplace", "url", "active"] if obj is None else self.fields

    def has_delete_permission(
        self, request: HttpRequest, obj: WebhookEndpoint | None = None
    ) -> bool:
        return False  # switch it off instead: a notice's history names its endpoint's marketplace

    def save_model(
        self,
        request: HttpRequest,
        obj: WebhookEndpoint,
        form: ModelForm[WebhookEndpoint],
        change: bool,
    ) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            self.message_user(
                request,
                "Give the marketplace this signing secret now; it is not shown again: "
                f"{obj.secret}",
                messages.WARNING,
            )


@admin.register(AssignmentNotice)
class AssignmentNoticeAdmin(_ReadOnly, admin.ModelAdmin[AssignmentNotice]):
    list_display = [
        "advance",
        "marketplace",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "delivered_at",
    ]
    list_filter = ["status", "marketplace"]
    list_select_related = ["advance", "marketplace"]
    search_fields = ["advance__ref", "marketplace__code"]


@admin.register(Receivable)
class ReceivableAdmin(_ReadOnly, admin.ModelAdmin[Receivable]):
    list_display = ["ref", "merchant", "source", "debtor_key", "short_fingerprint", "entry"]
    list_filter = ["source"]
    list_select_related = ["merchant", "entry"]
    search_fields = ["ref", "fingerprint", "merchant__legal_name", "merchant__public_id"]
    show_full_result_count = False

    @admin.display(description="fingerprint")
    def short_fingerprint(self, receivable: Receivable) -> str:
        return receivable.fingerprint[:16] + "…"


@admin.register(Assignment)
class AssignmentAdmin(_ReadOnly, admin.ModelAdmin[Assignment]):
    list_display = [
        "invoice_ref",
        "advance",
        "merchant",
        "debtor",
        "face",
        "advance_amount",
        "due_date",
        "status",
    ]
    list_filter = ["status"]
    list_select_related = ["advance", "merchant", "debtor"]
    search_fields = ["invoice_ref", "advance__ref", "merchant__legal_name", "debtor__name"]

    @admin.display(description="face", ordering="face_minor")
    def face(self, assignment: Assignment) -> str:
        return money(assignment.face_minor, assignment.advance.currency)

    @admin.display(description="advance amount", ordering="advance_minor")
    def advance_amount(self, assignment: Assignment) -> str:
        return money(assignment.advance_minor, assignment.advance.currency)
