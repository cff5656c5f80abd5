from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone

from merchants.models import (
    ApiKey,
    Debtor,
    Marketplace,
    MarketplaceMerchant,
    Membership,
    Merchant,
)
from merchants.services import api_key_issue, api_key_revoke


class MarketplaceMerchantInline(admin.TabularInline[MarketplaceMerchant, Merchant]):
    model = MarketplaceMerchant
    extra = 0
    autocomplete_fields = ["marketplace"]


class MembershipInline(admin.TabularInline[Membership, Merchant]):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Marketplace)
class MarketplaceAdmin(admin.ModelAdmin[Marketplace]):
    list_display = ["code", "name", "created_at"]
    search_fields = ["code", "name"]


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin[Merchant]):
    list_display = ["public_id", "legal_name", "country", "status", "kyc_status", "created_at"]
    list_filter = ["status", "kyc_status", "country"]
    search_fields = ["public_id", "legal_name", "tax_id", "links__seller_id"]
    readonly_fields = ["public_id", "created_at"]
    inlines = [MarketplaceMerchantInline, MembershipInline]


@admin.register(MarketplaceMerchant)
class MarketplaceMerchantAdmin(admin.ModelAdmin[MarketplaceMerchant]):
    list_display = ["seller_id", "marketplace", "merchant", "created_at"]
    list_filter = ["marketplace"]
    search_fields = ["seller_id", "merchant__legal_name", "merchant__public_id"]
    autocomplete_fields = ["marketplace", "merchant"]


@admin.register(Debtor)
class DebtorAdmin(admin.ModelAdmin[Debtor]):
    list_display = ["name", "kind", "tax_id", "country", "marketplace"]
    list_filter = ["kind"]
    search_fields = ["name", "tax_id"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin[Membership]):
    list_display = ["user", "merchant", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "merchant__legal_name"]
    autocomplete_fields = ["user", "merchant"]


class ApiKeyForm(ModelForm[ApiKey]):
    """Refuses a new key for a suspended or closed merchant as a field error. The service refuses
    it too (MerchantNotActive), but save_model runs after validation, too late to say why."""

    class Meta:
        model = ApiKey
        fields = ["marketplace", "merchant", "bank", "label"]

    def clean_merchant(self) -> Merchant | None:
        merchant: Merchant | None = self.cleaned_data.get("merchant")
        if merchant is not None and merchant.status != Merchant.Status.ACTIVE:
            raise forms.ValidationError(
                f"This merchant is {merchant.status}; keys are issued to active merchants only."
            )
        return merchant


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin[ApiKey]):
    """Issue and revoke API credentials, for a marketplace or for one merchant (one of the two).

    The key and secret are shown once, on issue.
    """

    list_display = [
        "prefix",
        "marketplace",
        "merchant",
        "bank",
        "label",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = [
        "marketplace",
        ("merchant", admin.EmptyFieldListFilter),
        ("revoked_at", admin.EmptyFieldListFilter),
    ]
    search_fields = ["prefix", "label", "marketplace__code", "merchant__public_id"]
    change_list_template = "admin/compact_change_list.html"
    fields = [
        "marketplace",
        "merchant",
        "bank",
        "label",
        "prefix",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    autocomplete_fields = ["merchant"]
    form = ApiKeyForm
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        always = ["prefix", "created_at", "last_used_at", "revoked_at"]
        return always if obj is None else [*always, "marketplace", "merchant"]

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return False  # revoke instead: the row explains past requests

    def save_model(
        self, request: HttpRequest, obj: ApiKey, form: ModelForm[ApiKey], change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        issued = api_key_issue(
            marketplace=obj.marketplace,
            merchant=obj.merchant,
            bank=obj.bank,
            now=timezone.now(),
            label=obj.label,
        )
        obj.pk = issued.api_key.pk
        self.message_user(
            request,
            f"Copy these now; they are not shown again. API key: {issued.key} "
            f"Signing secret: {issued.signing_secret}",
            messages.WARNING,
        )

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        now = timezone.now()
        for api_key in queryset:
            api_key_revoke(api_key=api_key, now=now)
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: Any = None) -> Any:
        return super().response_add(request, ApiKey.objects.get(pk=obj.pk), post_url_continue)
