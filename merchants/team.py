"""A merchant's team: who may use its portal, and in which role. Only owners change it.

Every change locks the merchant row (FOR NO KEY UPDATE, which leaves rows that reference the
merchant free to be written) and re-reads the acting user's role under that lock: two owners
demoting each other at once are serialised, and the second finds it is no owner any more. The
database keeps the last owner too (migration 0010), for any code path that skips this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction

from merchants.exceptions import (
    LastOwner,
    MemberAlreadyAdded,
    MemberEmailRefused,
    MemberNotFound,
    NotAnOwner,
)
from merchants.models import Membership, Merchant

OWNER = Membership.Role.OWNER


@dataclass(frozen=True)
class MemberAdded:
    """The new membership; ``user_created`` when the person had no sign-in before (they get a
    link to choose a password)."""

    membership: Membership
    user_created: bool


def owner_require(*, user: AbstractBaseUser, merchant: Merchant) -> None:
    """Let only an owner of ``merchant`` act.

    :raises NotAnOwner: ``user`` is not an owner of ``merchant`` (or is staff).
    """
    if (
        getattr(user, "is_staff", False)
        or not Membership.objects.filter(user_id=user.pk, merchant=merchant, role=OWNER).exists()
    ):
        raise NotAnOwner("Only an owner of the merchant may do this.")


def _role_check(role: str) -> None:
    if role not in Membership.Role.values:
        raise ValueError(f"Unknown role {role!r}.")


def _merchant_lock(merchant: Merchant, by: AbstractBaseUser) -> None:
    Merchant.objects.select_for_update(no_key=True).filter(pk=merchant.pk).first()
    owner_require(user=by, merchant=merchant)


def _member_locked(merchant: Merchant, membership_id: int) -> Membership:
    membership = (
        Membership.objects.select_for_update()
        .select_related("user")
        .filter(pk=membership_id, merchant=merchant)
        .first()
    )
    if membership is None:
        raise MemberNotFound(f"Merchant {merchant.public_id} has no member {membership_id}.")
    return membership


def _another_owner_remains(merchant: Merchant, membership: Membership) -> bool:
    others = Membership.objects.filter(merchant=merchant, role=OWNER).exclude(pk=membership.pk)
    return others.exists()


def member_add(*, merchant: Merchant, email: str, role: str, by: AbstractBaseUser) -> MemberAdded:
    """Give the person with ``email`` access to ``merchant`` in ``role``, creating their
    sign-in (username = the address, no usable password yet) when they have none.

    :raises NotAnOwner: ``by`` is not an owner of ``merchant``.
    :raises MemberEmailRefused: the address is bank staff's, or several sign-ins share it.
    :raises MemberAlreadyAdded: the person is a member already.
    """
    _role_check(role)
    email = email.strip().lower()
    user_model: Any = get_user_model()
    with transaction.atomic():
        _merchant_lock(merchant, by)
        users = list(user_model.objects.filter(email__iexact=email)[:2])
        if len(users) > 1 or any(u.is_staff or u.is_superuser for u in users):
            raise MemberEmailRefused("This address cannot be added; ask the bank.")
        if users and Membership.objects.filter(user=users[0], merchant=merchant).exists():
            raise MemberAlreadyAdded("This person is a member already.")
        if not users and user_model.objects.filter(username__iexact=email).exists():
            raise MemberEmailRefused("A sign-in with this name exists under another address.")
        user = users[0] if users else _user_create(user_model, email)
        membership = Membership.objects.create(user=user, merchant=merchant, role=role)
    return MemberAdded(membership=membership, user_created=not users)


def _user_create(user_model: Any, email: str) -> Any:
    # Another merchant's owner may be adding the same new person right now (their lock is not
    # ours); the unique username decides, and the loser is told in words, not with a 500.
    try:
        with transaction.atomic():
            return user_model.objects.create_user(username=email, email=email)
    except IntegrityError:
        raise MemberEmailRefused("This address was just added elsewhere; try again.") from None


def member_role_change(
    *, merchant: Merchant, membership_id: int, role: str, by: AbstractBaseUser
) -> Membership:
    """Give the member ``membership_id`` of ``merchant`` the role ``role``.

    :raises NotAnOwner: ``by`` is not an owner of ``merchant``.
    :raises MemberNotFound: no such member of ``merchant``.
    :raises LastOwner: it would demote the merchant's last owner.
    """
    _role_check(role)
    with transaction.atomic():
        _merchant_lock(merchant, by)
        membership = _member_locked(merchant, membership_id)
        demoted = membership.role == OWNER and role != OWNER
        if demoted and not _another_owner_remains(merchant, membership):
            raise LastOwner("The last owner cannot be given another role.")
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def member_remove(*, merchant: Merchant, membership_id: int, by: AbstractBaseUser) -> None:
    """Take the member ``membership_id``'s access to ``merchant`` away (their sign-in stays,
    for any other merchant they belong to).

    :raises NotAnOwner: ``by`` is not an owner of ``merchant``.
    :raises MemberNotFound: no such member of ``merchant``.
    :raises LastOwner: it is the merchant's last owner.
    """
    with transaction.atomic():
        _merchant_lock(merchant, by)
        membership = _member_locked(merchant, membership_id)
        if membership.role == OWNER and not _another_owner_remains(merchant, membership):
            raise LastOwner("The last owner cannot be removed.")
        membership.delete()
