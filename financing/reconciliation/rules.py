"""Editing the match rules: senior officers only, and only rules the engine can evaluate."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from financing.exceptions import WrongState
from financing.models import MatchRule
from financing.reconciliation.matching import IDENTIFYING, KEYS, ONE_TO_ONE, RuleSpec
from financing.services._shared import officer_require

EDIT_PERMISSION = "financing.change_matchrule"


def match_rule_save(*, rule: MatchRule, officer: User) -> MatchRule:
    """Save a new or edited match rule; it applies from the next matching run.

    :raises NotPermitted: the officer is not a senior officer.
    :raises WrongState: an unknown key, no currency key, a one-to-many or many-to-one rule
        without a key naming the items (end-to-end id or reference), or a name or order
        another rule has.
    """
    officer_require(officer, EDIT_PERMISSION)
    keys = list(dict.fromkeys(rule.keys))
    unknown = [k for k in keys if k not in KEYS]
    if unknown:
        raise WrongState(f"Unknown key(s) {', '.join(map(str, unknown))}: use {', '.join(KEYS)}.")
    if "currency" not in keys:
        raise WrongState("Every rule compares the currency: no match crosses currencies.")
    if rule.kind != ONE_TO_ONE and not set(keys) & set(IDENTIFYING):
        raise WrongState(
            "A one-to-many or many-to-one rule needs a key naming the items (end-to-end id or "
            "reference): without one, any set that happens to add up would match."
        )
    rule.keys = [k for k in KEYS if k in keys]  # one spelling per key set, in a fixed order
    try:
        with transaction.atomic():
            rule.save()
    except IntegrityError:
        raise WrongState("Another rule has this name or this order.") from None
    return rule


def rule_spec(rule: MatchRule) -> RuleSpec:
    """The rule as the matching core evaluates it."""
    return RuleSpec(
        id=rule.pk,
        name=rule.name,
        order=rule.order,
        kind=rule.kind,
        source=rule.source,
        keys=frozenset(rule.keys),
        tolerance_minor=rule.tolerance_minor,
        tolerance_bps=rule.tolerance_bps,
        days_before=rule.days_before,
        days_after=rule.days_after,
        auto_confirm=rule.auto_confirm,
    )
