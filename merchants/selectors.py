"""Reads of the parties: which merchants a portal user may act for."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from merchants.models import Membership


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
