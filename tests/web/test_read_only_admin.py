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


@pytest.mark.django_db
def test_read_only_pages_show_amounts_as_people_read_them_not_minor_units(
    make_staff_user,
) -> None:
    request = RequestFactory().get("/")
    request.user = make_staff_user(superuser=True)
    with_amounts = {
        model: model_admin
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, ReadOnlyAdminMixin)
        and any(field.name.endswith("_minor") for field in model._meta.concrete_fields)
    }

    assert {Advance, Account} <= with_amounts.keys()
    for model, model_admin in with_amounts.items():
        fields = model_admin.get_fields(request, None)
        assert not [name for name in fields if str(name).endswith("_minor")], model
        assert len(fields) == len(set(fields)), model  # each display once, in its field's place


def test_no_help_text_holds_markup_the_admin_would_render() -> None:
    # The admin renders help texts as HTML: "'marketplace:<code>'" lost its placeholder and set
    # the rest of the page in a monospace font.
    from django.apps import apps

    marked = [
        f"{model.__name__}.{field.name}"
        for model in apps.get_models()
        for field in model._meta.get_fields()
        if "<" in str(getattr(field, "help_text", ""))
    ]

    assert marked == []


def test_a_read_only_admin_of_amounts_without_a_currency_is_refused_at_start_up() -> None:
    from django.core.exceptions import ImproperlyConfigured

    from financing.models import Assignment  # its amounts are in its advance's currency

    class Careless(ReadOnlyAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
        pass

    with pytest.raises(ImproperlyConfigured, match="amount_currency"):
        Careless(Assignment, admin.site)
