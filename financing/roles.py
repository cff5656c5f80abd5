"""The bank's staff roles, as Django groups with exactly the permissions each role needs.

* officer: reviews advances (maker: approve, reject); proposes facilities and their changes,
  bank-wide debtor limits, blacklist lifts, duplicate-flag clearances and suspense
  allocations; blacklists; re-runs dead-lettered tasks; resolves reconciliation breaks and
  confirms or rejects suggested matches.
* senior officer: an officer who may also authorize disbursement (checker) and confirm or
  reject what another officer proposed (four-eyes); edits the reconciliation match rules.
* auditor: reads everything, changes nothing.

Synced after every migrate, so a new model's view permission reaches the auditor at once.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

ROLE_APPS = ("financing", "books", "ledger", "merchants")
OFFICER = "officer"
SENIOR_OFFICER = "senior officer"
AUDITOR = "auditor"
_OFFICER_ACTS = [
    ("financing", "approve_advance"),
    ("financing", "manage_blacklist"),
    ("financing", "add_facility"),
    ("financing", "change_facility"),
    ("financing", "change_debtorlimit"),
    ("financing", "add_webhookendpoint"),
    ("financing", "change_webhookendpoint"),
    ("financing", "resend_assignmentnotice"),
    ("financing", "change_suspenseitem"),
    ("financing", "change_deadletter"),
    ("financing", "upload_settlementreport"),
    # Money movement (issue 10): propose a payee account (four-eyes), send and read bank files.
    ("merchants", "add_bankaccount"),
    ("financing", "add_paymentbatch"),
    ("financing", "add_bankstatement"),
    # Reconciliation (issue 10): resolve breaks, decide suggested and ambiguous matches.
    ("financing", "change_break"),
    ("financing", "change_match"),
]


def officer_groups_sync(**kwargs: Any) -> None:
    views = Permission.objects.filter(
        content_type__app_label__in=ROLE_APPS, codename__startswith="view_"
    )
    acts = Permission.objects.none()
    for app_label, codename in _OFFICER_ACTS:
        acts |= Permission.objects.filter(
            Q(content_type__app_label=app_label) & Q(codename=codename)
        )
    authorize = Permission.objects.filter(
        content_type__app_label="financing",
        codename__in=[
            "authorize_advance",
            "confirm_riskchange",
            "add_matchrule",
            "change_matchrule",
        ],
    )
    grants = {
        AUDITOR: views,
        OFFICER: views | acts,
        SENIOR_OFFICER: views | acts | authorize,
    }
    for name, permissions in grants.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(permissions)
