"""Notices of assignment: the webhook endpoints they go to and the outbox that delivers them.

Endpoints are created and changed through ``webhook_endpoint_create`` and
``webhook_endpoint_change``; notices are written by the services and delivered by the tasks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from config.admin_mixins import ReadOnlyAdminMixin
from financing.admin.formatting import refusal
from financing.admin.writes import ServiceSaveAdmin, officer_of
from financing.exceptions import FinancingError
from financing.models import AssignmentNotice, NoticeAttempt, WebhookEndpoint
from financing.notices import notice_resend
from financing.services.webhooks import webhook_endpoint_change, webhook_endpoint_create


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceSaveAdmin[WebhookEndpoint]):
    """Where notices of assignment go. The signing secret is shown whole once, on creation."""

    list_display = ["marketplace", "url", "active", "masked_secret"]
    list_filter = ["active"]
    list_select_related = ["marketplace"]
    search_fields = ["marketplace__code", "marketplace__name", "url"]
    fields = ["marketplace", "url", "active", "masked_secret"]

    @admin.display(description="signing secret")
    def masked_secret(self, endpoint: WebhookEndpoint) -> str:
        # Not a character of it: the secret is sealed at rest and shown once, on creation.
        return "sealed (shown once, when the endpoint was created)"

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
        """Create or change the endpoint through the services; a refusal returns to the form."""
        data, officer = form.cleaned_data, officer_of(request)
        write: Callable[[], WebhookEndpoint]
        if change:
            write = partial(
                webhook_endpoint_change,
                endpoint=obj,
                url=data["url"],
                active=data["active"],
                officer=officer,
            )
        else:
            write = partial(
                webhook_endpoint_create,
                marketplace=data["marketplace"],
                url=data["url"],
                active=data["active"],
                officer=officer,
            )
        if self.save_through(request, obj, write) and not change:
            self.message_user(
                request,
                "Give the marketplace this signing secret now; it is not shown again: "
                f"{obj.secret}",
                messages.WARNING,
            )


class NoticeAttemptInline(ReadOnlyAdminMixin, admin.TabularInline[NoticeAttempt, AssignmentNotice]):
    """The notice's delivery history: every attempt, its outcome, and officers' re-sends."""

    model = NoticeAttempt
    verbose_name = "delivery"
    verbose_name_plural = "delivery history"
    fields = ["at", "channel", "destination", "outcome", "detail", "officer"]
    readonly_fields = ["at", "channel", "destination", "outcome", "detail", "officer"]
    extra = 0
    can_delete = False


@admin.register(AssignmentNotice)
class AssignmentNoticeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[AssignmentNotice]):
    """Notices of assignment, one per debtor of an advance; failed ones may be re-sent."""

    list_display = [
        "advance",
        "debtor",
        "channel",
        "status",
        "waiting",
        "attempts",
        "last_error",
        "created_at",
    ]
    list_filter = ["status", "channel", "waiting", "marketplace"]
    list_select_related = ["advance", "debtor"]
    change_list_template = "admin/compact_change_list.html"
    search_fields = ["advance__ref", "debtor__name", "debtor__email", "marketplace__code"]
    inlines = [NoticeAttemptInline]
    actions = ["resend"]
    exclude = ["payload"]
    readonly_fields = ["what_it_says"]

    @admin.display(description="payload (what the debtor is told)")
    def what_it_says(self, notice: AssignmentNotice) -> str:
        return format_html(
            "<pre>{}</pre>", json.dumps(notice.payload, indent=2, ensure_ascii=False)
        )

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("financing.resend_assignmentnotice")

    @admin.action(description="Re-send the selected failed notices", permissions=["resend"])
    def resend(self, request: HttpRequest, queryset: QuerySet[AssignmentNotice]) -> None:
        officer, now, sent = officer_of(request), timezone.now(), 0
        for notice in queryset.select_related("advance", "debtor"):
            try:
                notice_resend(notice=notice, officer=officer, now=now)
            except FinancingError as exc:
                self.message_user(request, refusal(exc), messages.ERROR)
            else:
                sent += 1
        if sent:
            self.message_user(request, f"Re-sending {sent} notice(s).", messages.SUCCESS)
