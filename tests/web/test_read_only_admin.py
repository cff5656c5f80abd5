"""One read-only mixin (config/admin_mixins.py) for the evidence, the books and financing rows."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import RequestFactory

from config.admin_mixins import ReadOnlyAdminMixin
from financing.books.models import Account, JournalEntry
from financing.models import Advance, AssignmentNotice, Blacklisting, FacilityChange
from ledger.models import Chain, Entry, LedgerVerification


@pytest.mark.django_db
def test_the_rows_services_write_are_read_only_even_for_a_superuser(
    make_staff_user,
) -> None:
    request = RequestFactory().get("/")
    request.user = make_staff_user(superuser=True)
    assert isinstance(request.user, User)
    read_only = {
        model
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, ReadOnlyAdminMixin)
    }

    assert {
        Chain,
        Entry,
        LedgerVerification,
        Account,
        JournalEntry,
        Advance,
        FacilityChange,
        Blacklisting,
        AssignmentNotice,
    } <= read_only
    for model in read_only:
        model_admin = admin.site._registry[model]
        assert not model_admin.has_add_permission(request), model
        assert not model_admin.has_change_permission(request, None), model
        assert not model_admin.has_delete_permission(request, None), model
        assert model_admin.has_view_permission(request, None), model
