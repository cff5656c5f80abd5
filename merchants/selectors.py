"""Reads of the parties: which merchants a portal user may act for; a merchant's team,
API credentials and bank accounts."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Case, F, IntegerField, QuerySet, Value, When

from merchants.models import ApiKey, BankAccount, Membership, Merchant


def memberships_of(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Membership]:
    """Return the user's memberships with their merchants, by merchant name.

    Staff get none: the bank's people never act as a merchant, whatever rows exist.
    """
    if not user.is_authenticated or getattr(user, "is_staff", False):
        return Membership.objects.none()
    return (
        Membership.objects.filter(user_id=user.pk)
        .select_related("merchant")
        .order_by("merchant__legal_name", "merchant_id")
    )


def membership_for(
    *, user: AbstractBaseUser | AnonymousUser, merchant_public_id: str
) -> Membership | None:
    """Return the user's membership of the merchant with that public id, or None."""
    return memberships_of(user=user).filter(merchant__public_id=merchant_public_id).first()


def members_of(*, merchant: Merchant) -> QuerySet[Membership]:
    """Return ``merchant``'s members with their sign-ins: owners first, then by address."""
    role_order = Case(
        *(When(role=role, then=Value(i)) for i, role in enumerate(Membership.Role.values)),
        output_field=IntegerField(),
    )
    return (
        Membership.objects.filter(merchant=merchant)
        .select_related("user")
        .order_by(role_order, "user__email", "user__username", "pk")
    )


def api_keys_of(*, merchant: Merchant) -> QuerySet[ApiKey]:
    """Return ``merchant``'s own API credentials, active first, newest first."""
    return ApiKey.objects.filter(merchant=merchant).order_by(
        F("revoked_at").desc(nulls_first=True), "-created_at", "-pk"
    )


def bank_accounts_of(*, merchant: Merchant) -> QuerySet[BankAccount]:
    """Return ``merchant``'s bank accounts, newest first (masks only ever leave this model)."""
    return BankAccount.objects.filter(merchant=merchant).order_by("-created_at", "-pk")
