"""A merchant's team (merchants.team): only owners change it, and the last owner stays, in the
service and in the database, also when two owners demote each other at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, connections, transaction

from merchants.exceptions import (
    LastOwner,
    MemberAlreadyAdded,
    MemberEmailRefused,
    MemberNotFound,
    NotAnOwner,
)
from merchants.models import MarketplaceMerchant, Membership, Merchant
from merchants.services import membership_grant
from merchants.team import member_add, member_remove, member_role_change

OWNER, FINANCE, VIEWER = "owner", "finance", "viewer"


@pytest.fixture
def member(db: None, django_user_model: type[User]) -> Callable[..., Membership]:
    def make(merchant: Merchant, role: str, name: str) -> Membership:
        user = django_user_model.objects.create_user(name, email=f"{name}@example.com")
        return membership_grant(user=user, merchant=merchant, role=role)

    return make


def test_an_owner_adds_a_new_person_who_gets_a_sign_in_without_a_password(
    merchant: Merchant, member: Callable[..., Membership]
) -> None:
    owner = member(merchant, OWNER, "olga")
    added = member_add(merchant=merchant, email=" Finn@Example.com ", role=FINANCE, by=owner.user)
    assert added.user_created
    assert added.membership.role == FINANCE
    user = added.membership.user
    assert (user.username, user.email) == ("finn@example.com", "finn@example.com")
    assert not user.has_usable_password()


def test_someone_who_signs_in_already_is_added_without_a_new_sign_in(
    merchant: Merchant, make_merchant: Callable[..., Merchant], member: Callable[..., Membership]
) -> None:
    owner = member(merchant, OWNER, "olga")
    elsewhere = member(make_merchant(), VIEWER, "vic")
    added = member_add(merchant=merchant, email="VIC@example.com", role=VIEWER, by=owner.user)
    assert not added.user_created and added.membership.user == elsewhere.user
    with pytest.raises(MemberAlreadyAdded):
        member_add(merchant=merchant, email="vic@example.com", role=FINANCE, by=owner.user)


def test_bank_staff_cannot_be_added(
    merchant: Merchant, member: Callable[..., Membership], django_user_model: type[User]
) -> None:
    owner = member(merchant, OWNER, "olga")
    django_user_model.objects.create_user("clerk", email="clerk@bank.example", is_staff=True)
    with pytest.raises(MemberEmailRefused):
        member_add(merchant=merchant, email="clerk@bank.example", role=VIEWER, by=owner.user)
    assert not Membership.objects.filter(user__username="clerk").exists()


@pytest.mark.parametrize("role", [FINANCE, VIEWER])
def test_only_owners_change_the_team(
    merchant: Merchant, member: Callable[..., Membership], role: str
) -> None:
    owner = member(merchant, OWNER, "olga")
    other = member(merchant, role, "nora")
    with pytest.raises(NotAnOwner):
        member_add(merchant=merchant, email="x@example.com", role=OWNER, by=other.user)
    with pytest.raises(NotAnOwner):
        member_role_change(merchant=merchant, membership_id=owner.pk, role=VIEWER, by=other.user)
    with pytest.raises(NotAnOwner):
        member_remove(merchant=merchant, membership_id=owner.pk, by=other.user)
    assert Membership.objects.get(pk=owner.pk).role == OWNER


def test_another_merchants_member_is_not_found(
    merchant: Merchant, make_merchant: Callable[..., Merchant], member: Callable[..., Membership]
) -> None:
    owner = member(merchant, OWNER, "olga")
    stranger = member(make_merchant(), VIEWER, "sam")
    with pytest.raises(MemberNotFound):
        member_role_change(merchant=merchant, membership_id=stranger.pk, role=OWNER, by=owner.user)
    with pytest.raises(MemberNotFound):
        member_remove(merchant=merchant, membership_id=stranger.pk, by=owner.user)
    assert Membership.objects.get(pk=stranger.pk).role == VIEWER


def test_the_last_owner_is_neither_demoted_nor_removed(
    merchant: Merchant, member: Callable[..., Membership]
) -> None:
    owner = member(merchant, OWNER, "olga")
    with pytest.raises(LastOwner):
        member_role_change(merchant=merchant, membership_id=owner.pk, role=FINANCE, by=owner.user)
    with pytest.raises(LastOwner):
        member_remove(merchant=merchant, membership_id=owner.pk, by=owner.user)
    second = member(merchant, FINANCE, "finn")
    member_role_change(merchant=merchant, membership_id=second.pk, role=OWNER, by=owner.user)
    member_role_change(merchant=merchant, membership_id=owner.pk, role=VIEWER, by=owner.user)
    member_remove(merchant=merchant, membership_id=owner.pk, by=second.user)
    assert list(Membership.objects.filter(merchant=merchant).values_list("role", flat=True)) == [
        OWNER
    ]


@pytest.mark.django_db(transaction=True)
def test_the_database_refuses_to_demote_the_last_owner(
    merchant: Merchant, member: Callable[..., Membership]
) -> None:
    owner = member(merchant, OWNER, "olga")
    with pytest.raises(IntegrityError, match=r"without an owner|last owner"), transaction.atomic():
        Membership.objects.filter(pk=owner.pk).update(role=VIEWER)
    assert Membership.objects.get(pk=owner.pk).role == OWNER


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_database_refuses_to_delete_the_last_owner_but_not_with_its_merchant(
    make_merchant: Callable[..., Merchant], member: Callable[..., Membership]
) -> None:
    merchant = make_merchant()
    owner = member(merchant, OWNER, "olga")
    with pytest.raises(IntegrityError, match="without an owner"), transaction.atomic():
        Membership.objects.filter(pk=owner.pk).delete()
    # Swapping owners in one transaction is fine in either order: the check runs at commit.
    other = member(merchant, VIEWER, "vic")
    with transaction.atomic():
        Membership.objects.filter(pk=owner.pk).update(role=VIEWER)
        Membership.objects.filter(pk=other.pk).update(role=OWNER)
    # A merchant deleted takes its owners along.
    with transaction.atomic():
        MarketplaceMerchant.objects.filter(merchant=merchant).delete()
        Merchant.objects.filter(pk=merchant.pk).delete()
    assert not Membership.objects.filter(pk__in=[owner.pk, other.pk]).exists()


def _together(*jobs: Callable[[], Any]) -> list[Any]:
    """Run ``jobs`` in threads started at once; each result or the exception it raised."""
    results: list[Any] = [None] * len(jobs)
    start = threading.Barrier(len(jobs))

    def run(i: int) -> None:
        try:
            start.wait(timeout=30)
            results[i] = jobs[i]()
        except BaseException as exc:
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread still runs: a deadlock?"
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_owners_demoting_each_other_at_once_leave_one_owner(
    merchant: Merchant, member: Callable[..., Membership]
) -> None:
    a, b = member(merchant, OWNER, "ann"), member(merchant, OWNER, "bob")
    results = _together(
        lambda: member_role_change(merchant=merchant, membership_id=b.pk, role=VIEWER, by=a.user),
        lambda: member_role_change(merchant=merchant, membership_id=a.pk, role=VIEWER, by=b.user),
    )
    # The second to take the merchant's lock is no owner any more when it gets it.
    assert sorted(type(r).__name__ for r in results) == ["Membership", "NotAnOwner"], results
    assert Membership.objects.filter(merchant=merchant, role=OWNER).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_negative_control_without_the_service_the_database_still_keeps_one_owner(
    merchant: Merchant, member: Callable[..., Membership]
) -> None:
    """Both demotions written straight, each seeing the other still owner: the constraint
    trigger locks the merchant at commit and refuses the second."""
    a, b = member(merchant, OWNER, "ann"), member(merchant, OWNER, "bob")
    both_written = threading.Barrier(2)

    def demote(pk: int) -> int:
        with transaction.atomic():
            Membership.objects.filter(pk=pk).update(role=VIEWER)
            others = Membership.objects.filter(merchant=merchant, role=OWNER).count()
            both_written.wait(timeout=30)  # each sees one owner left: the unguarded check passes
            return others

    results = _together(lambda: demote(a.pk), lambda: demote(b.pk))
    assert sorted(type(r).__name__ for r in results) == ["IntegrityError", "int"], results
    assert Membership.objects.filter(merchant=merchant, role=OWNER).count() == 1
