"""The blacklist: who may not request advances, and why. Adding goes through a service; lifting
is proposed by one officer and confirmed by a different senior officer (four-eyes)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from config.admin_mixins import ReadOnlyAdminMixin
from financing.admin.formatting import refusal
from financing.admin.writes import PROPOSED, object_seen, officer_of
from financing.exceptions import FinancingError
from financing.models import Blacklisting
from financing.services.blacklist import blacklist_add, blacklist_lift_propose
from merchants.models import Merchant


class BlacklistForm(forms.Form):
    merchant = forms.ModelChoiceField(queryset=Merchant.objects.order_by("legal_name"))
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="The merchant will read it; an officer lifting it later will too.",
    )


class LiftForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why new advances may be requested again; a senior officer confirms it.",
    )


@admin.register(Blacklisting)
class BlacklistingAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Blacklisting]):
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
        if not officer_of(request).has_perm("financing.manage_blacklist"):
            columns.remove("lift_link")
        return columns

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {"may_manage": officer_of(request).has_perm("financing.manage_blacklist")}
        return super().changelist_view(request, context | (extra_context or {}))

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = {"may_manage": officer_of(request).has_perm("financing.manage_blacklist")}
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
                    officer=officer_of(request),
                    reason=form.cleaned_data["reason"].strip(),
                    now=timezone.now(),
                )
            except FinancingError as exc:
                form.add_error(None, refusal(exc))
            else:
                self.message_user(
                    request, f"{blacklisting.merchant.legal_name} is blacklisted.", messages.SUCCESS
                )
                return HttpResponseRedirect(reverse("admin:financing_blacklisting_changelist"))
        return self._form_page(request, form, title="Blacklist a merchant", action="Blacklist")

    def lift_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Propose lifting a blacklisting, with a written reason, for a senior to confirm."""
        blacklisting = object_seen(self, request, object_id)
        form = LiftForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                blacklist_lift_propose(
                    blacklisting=blacklisting,
                    officer=officer_of(request),
                    reason=form.cleaned_data["reason"].strip(),
                    now=timezone.now(),
                )
            except FinancingError as exc:
                form.add_error(None, refusal(exc))
            else:
                self.message_user(request, PROPOSED, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:financing_riskchange_changelist"))
        return self._form_page(
            request,
            form,
            title=f"Propose lifting the blacklisting of {blacklisting.merchant.legal_name}",
            action="Propose the lift",
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
            "may_manage": officer_of(request).has_perm("financing.manage_blacklist"),
            **extra,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.form_template, context)
