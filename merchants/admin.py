from django.contrib import admin

from merchants.models import Debtor, Marketplace, MarketplaceMerchant, Membership, Merchant


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
