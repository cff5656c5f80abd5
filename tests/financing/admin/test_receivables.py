"""Receivables and assignments, read-only, with amounts as money (financing.admin.receivables)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import RequestFactory
from django.urls import reverse

from financing.models import Assignment, Facility, Receivable
from tests.financing.admin.conftest import SignIn, _request
from tests.financing.conftest import Trade

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_assignments_show_face_and_advance_as_money(
    live: Trade, line: Facility, auditor: User, sign_in: SignIn
) -> None:
    _request(live, amount="1000.00")
    assignment_admin = admin.site._registry[Assignment]
    assignment = Assignment.objects.select_related("advance").get()

    assert assignment_admin.face(assignment) == "1,000.00 EUR"
    assert assignment_admin.advance_amount(assignment) == "800.00 EUR"
    page = sign_in(auditor).get(reverse("admin:financing_assignment_changelist"))
    assert "1,000.00 EUR" in page.content.decode()


def test_receivables_and_assignments_are_read_only(live: Trade, line: Facility) -> None:
    _request(live)
    request = RequestFactory().get("/")
    for model in (Receivable, Assignment):
        model_admin = admin.site._registry[model]
        row = model._default_manager.first()
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request, row)
        assert not model_admin.has_delete_permission(request, row)
