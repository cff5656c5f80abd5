"""The matching engine's pure core on plain facts: kinds, keys, tolerances, order, ambiguity."""

from __future__ import annotations

from datetime import date

from financing.reconciliation.matching import (
    AMOUNT,
    CREDITS_TO_PAYOUTS,
    CURRENCY,
    DEBITS_TO_PAYMENTS,
    END_TO_END_ID,
    MANY_TO_ONE,
    ONE_TO_MANY,
    ONE_TO_ONE,
    REFERENCE,
    CandidateFacts,
    EntryFacts,
    RuleSpec,
    match_entries,
    reference_words,
)

DAY = date(2026, 11, 2)


def rule(rid: int, kind: str, source: str, *keys: str, **kw: object) -> RuleSpec:
    return RuleSpec(
        id=rid,
        name=f"r{rid}",
        order=rid * 10,
        kind=kind,
        source=source,
        keys=frozenset(keys),
        **kw,  # type: ignore[arg-type]
    )


def debit(
    eid: int, amount: int, *e2e: str, refs: tuple[str, ...] = (), on: date = DAY
) -> EntryFacts:
    return EntryFacts(
        id=eid,
        direction="debit",
        amount_minor=amount,
        currency="EUR",
        value_on=on,
        end_to_end_ids=e2e,
        references=refs,
    )


def credit(eid: int, amount: int, *refs: str, on: date = DAY, currency: str = "EUR") -> EntryFacts:
    return EntryFacts(
        id=eid,
        direction="credit",
        amount_minor=amount,
        currency=currency,
        value_on=on,
        references=refs,
    )


def payment(pid: int, amount: int, e2e: str, *refs: str) -> CandidateFacts:
    return CandidateFacts(
        id=pid, amount_minor=amount, currency="EUR", on=DAY, end_to_end_id=e2e, references=refs
    )


def payout(pid: int, amount: int, ref: str, on: date = DAY) -> CandidateFacts:
    return CandidateFacts(id=pid, amount_minor=amount, currency="EUR", on=on, references=(ref,))


E2E_EXACT = rule(1, ONE_TO_ONE, DEBITS_TO_PAYMENTS, END_TO_END_ID, AMOUNT, CURRENCY)
BATCH = rule(2, ONE_TO_MANY, DEBITS_TO_PAYMENTS, END_TO_END_ID, AMOUNT, CURRENCY)
PAYOUT_REF = rule(4, ONE_TO_MANY, CREDITS_TO_PAYOUTS, REFERENCE, AMOUNT, CURRENCY, days_after=3)
PAYOUT_REF_TOL = rule(
    5, ONE_TO_MANY, CREDITS_TO_PAYOUTS, REFERENCE, CURRENCY, tolerance_minor=100, days_after=3
)
INSTALMENTS = rule(6, MANY_TO_ONE, CREDITS_TO_PAYOUTS, REFERENCE, AMOUNT, CURRENCY, days_after=3)
AMOUNT_DATE = rule(7, ONE_TO_ONE, CREDITS_TO_PAYOUTS, AMOUNT, CURRENCY, days_after=1)
CREDIT_RULES = [PAYOUT_REF, PAYOUT_REF_TOL, INSTALMENTS, AMOUNT_DATE]


def test_end_to_end_exact_is_confirmed_and_records_its_rule() -> None:
    out = match_entries(
        entries=[debit(1, 5000, "E2E-1")],
        candidates={DEBITS_TO_PAYMENTS: [payment(10, 5000, "E2E-1"), payment(11, 5000, "E2E-2")]},
        rules=[E2E_EXACT],
    )
    [p] = out.proposals
    assert (p.rule, p.entry_ids, p.candidate_ids, p.adjustment_minor, p.confirmed) == (
        E2E_EXACT,
        (1,),
        (10,),
        0,
        True,
    )
    assert out.unmatched == [] and out.ambiguities == []


def test_wrong_amount_under_an_amount_key_matches_nothing() -> None:
    out = match_entries(
        entries=[debit(1, 4999, "E2E-1")],
        candidates={DEBITS_TO_PAYMENTS: [payment(10, 5000, "E2E-1")]},
        rules=[E2E_EXACT],
    )
    assert out.proposals == [] and out.unmatched == [1]


def test_batch_booked_debit_matches_one_to_many() -> None:
    out = match_entries(
        entries=[debit(1, 300, "A", "B", "C")],
        candidates={
            DEBITS_TO_PAYMENTS: [
                payment(1, 100, "A"),
                payment(2, 150, "B"),
                payment(3, 50, "C"),
                payment(4, 300, "D"),
            ]
        },
        rules=[E2E_EXACT, BATCH],
    )
    [p] = out.proposals
    assert (p.rule, p.candidate_ids, p.confirmed) == (BATCH, (1, 2, 3), True)


def test_batch_naming_an_unknown_payment_is_no_match() -> None:
    out = match_entries(
        entries=[debit(1, 300, "A", "X")],
        candidates={DEBITS_TO_PAYMENTS: [payment(1, 300, "A")]},
        rules=[BATCH],
    )
    assert out.unmatched == [1]


def test_credit_30_cents_short_within_one_euro_is_suggested_with_its_adjustment() -> None:
    out = match_entries(
        entries=[credit(1, 99_970, "PAYOUT PO-7")],
        candidates={CREDITS_TO_PAYOUTS: [payout(7, 100_000, "PO-7")]},
        rules=CREDIT_RULES,
    )
    [p] = out.proposals
    assert (p.rule, p.candidate_ids, p.adjustment_minor, p.confirmed) == (
        PAYOUT_REF_TOL,
        (7,),
        -30,
        False,
    )


def test_beyond_tolerance_is_no_match() -> None:
    out = match_entries(
        entries=[credit(1, 99_899, "PO-7")],
        candidates={CREDITS_TO_PAYOUTS: [payout(7, 100_000, "PO-7")]},
        rules=[PAYOUT_REF_TOL],
    )
    assert out.unmatched == [1]


def test_basis_point_tolerance_takes_the_larger() -> None:
    bps = rule(9, ONE_TO_ONE, CREDITS_TO_PAYOUTS, REFERENCE, tolerance_minor=10, tolerance_bps=5)
    # 5 bp of 1,000.00 is 0.50: 0.45 short fits, 0.51 does not.
    ok = match_entries(
        entries=[credit(1, 99_955, "PO-1")],
        candidates={CREDITS_TO_PAYOUTS: [payout(1, 100_000, "PO-1")]},
        rules=[bps],
    )
    no = match_entries(
        entries=[credit(1, 99_949, "PO-1")],
        candidates={CREDITS_TO_PAYOUTS: [payout(1, 100_000, "PO-1")]},
        rules=[bps],
    )
    assert ok.proposals[0].adjustment_minor == -45 and no.unmatched == [1]


def test_two_equal_payouts_on_one_day_are_ambiguous_and_never_matched() -> None:
    out = match_entries(
        entries=[credit(1, 50_000, "marketplace transfer")],
        candidates={CREDITS_TO_PAYOUTS: [payout(1, 50_000, "PO-1"), payout(2, 50_000, "PO-2")]},
        rules=CREDIT_RULES,
    )
    assert out.proposals == [] and out.unmatched == []
    [a] = out.ambiguities
    assert (a.rule, a.entry_id, a.options) == (AMOUNT_DATE, 1, ((1,), (2,)))


def test_one_payout_fitting_two_entries_is_ambiguous_for_both() -> None:
    out = match_entries(
        entries=[credit(1, 50_000, "x"), credit(2, 50_000, "y")],
        candidates={CREDITS_TO_PAYOUTS: [payout(1, 50_000, "PO-1")]},
        rules=[AMOUNT_DATE],
    )
    assert out.proposals == [] and sorted(a.entry_id for a in out.ambiguities) == [1, 2]


def test_value_date_tolerance() -> None:
    late = match_entries(
        entries=[credit(1, 500, on=date(2026, 11, 4))],
        candidates={CREDITS_TO_PAYOUTS: [payout(1, 500, "PO-1")]},
        rules=[AMOUNT_DATE],
    )
    early = match_entries(
        entries=[credit(1, 500, on=date(2026, 11, 1))],
        candidates={CREDITS_TO_PAYOUTS: [payout(1, 500, "PO-1")]},
        rules=[AMOUNT_DATE],
    )
    ontime = match_entries(
        entries=[credit(1, 500, on=date(2026, 11, 3))],
        candidates={CREDITS_TO_PAYOUTS: [payout(1, 500, "PO-1")]},
        rules=[AMOUNT_DATE],
    )
    assert late.unmatched == [1] and early.unmatched == [1] and ontime.proposals


def test_instalments_match_many_to_one() -> None:
    out = match_entries(
        entries=[credit(1, 600, "PO-9 part 1"), credit(2, 400, "PO-9 part 2")],
        candidates={CREDITS_TO_PAYOUTS: [payout(9, 1000, "PO-9")]},
        rules=CREDIT_RULES,
    )
    [p] = out.proposals
    assert (p.rule, p.entry_ids, p.candidate_ids, p.confirmed) == (INSTALMENTS, (1, 2), (9,), True)


def test_rules_run_in_order_and_a_matched_candidate_is_taken() -> None:
    out = match_entries(
        entries=[credit(1, 1000, "PO-1"), credit(2, 1000, "nothing")],
        candidates={CREDITS_TO_PAYOUTS: [payout(1, 1000, "PO-1")]},
        rules=list(reversed(CREDIT_RULES)),
    )
    # The reference rule (order 40) runs before amount-and-date (70) whatever the list order,
    # takes the payout, and the second entry finds nothing left.
    assert [(p.rule, p.entry_ids) for p in out.proposals] == [(PAYOUT_REF, (1,))]
    assert out.unmatched == [2]


def test_no_match_across_currencies() -> None:
    out = match_entries(
        entries=[credit(1, 1000, "PO-1", currency="USD")],
        candidates={CREDITS_TO_PAYOUTS: [payout(1, 1000, "PO-1")]},
        rules=CREDIT_RULES,
    )
    assert out.unmatched == [1]


def test_debits_never_match_payouts() -> None:
    out = match_entries(
        entries=[debit(1, 1000, refs=("PO-1",))],
        candidates={CREDITS_TO_PAYOUTS: [payout(1, 1000, "PO-1")]},
        rules=CREDIT_RULES,
    )
    assert out.unmatched == [1]


def test_reference_words() -> None:
    assert {"PO-7", "PAYOUT", "PAYOUT PO-7"} <= reference_words(["payout  po-7"])
