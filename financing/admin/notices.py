"""Notices of assignment: the webhook endpoints they go to and the outbox that delivers them.

Endpoints are created and changed through ``webhook_endpoint_create`` and
``webhook_endpoint_change``; notices are written by the services and delivered by the tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from django.contrib import admin, messages
from django.forms import ModelForm
from django.http import HttpRequest

from config.admin_mixins import ReadOnlyAdminMixin
from financing.admin.writes import ServiceSaveAdmin, officer_of
from financing.models import AssignmentNotice, WebhookEndpoint
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


@admin.register(AssignmentNotice)
class AssignmentNoticeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[AssignmentNotice]):
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
