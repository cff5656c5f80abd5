"""Four-eyes over what moves risk, through the admin (issue 8 item 7).

The case the issue found: a plain officer raised a facility's checker threshold and then
approved a 40,000.00 advance alone, and it disbursed with no checker.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from financing.models import Advance, Facility
from financing.services.decisions import advance_approve
from tests.financing.admin.conftest import SignIn, _facility_form, _request
from tests.financing.conftest import Trade

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_a_plain_officer_cannot_raise_the_threshold_and_approve_alone(
    live: Trade, line: Facility, officer: User, sign_in: SignIn
) -> None:
    client = sign_in(officer)
    url = reverse("admin:financing_facility_change", args=[line.pk])

    client.post(
        url,
        _facility_form(line, checker_threshold_minor="100000.00", reason="Busy season"),
    )
    advance = _request(live, n=1, amount="50000.00")  # advances 40,000.00
    assert advance.advance_minor == 4_000_000
    decided = advance_approve(advance=advance, officer=officer, now=timezone.now())

    line.refresh_from_db()
    assert line.checker_threshold_minor == 500_000  # the raise is only a proposal
    assert decided.status == Advance.Status.APPROVED  # a second officer must authorize
    assert decided.authorized_by is None
