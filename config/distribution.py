"""How Chainfin's tables lay out on a database distributed by merchant (PostgreSQL with Citus).

Every hot transaction (an ingest, a transfer, a settlement) is one merchant's, and writes rows
of the distributed tables below that all carry that merchant's id: so with the merchant id as
the distribution column, and those tables colocated, each such transaction runs on the one
node holding the merchant's shard. The README's "Scaling past one machine" says how;
tests/scaleout/ check it on the real transactions, so it holds as the code grows.

Each table of the project's apps is in exactly one of the three maps (a test says so):

* ``DISTRIBUTED``: the table and its merchant column (the distribution column);
* ``REFERENCE``: small tables every node reads (a copy on each): parties, keys, limits, rules.
  Hot transactions read them and write none of them;
* ``BANK_WIDE``: the bank's work as a whole, not any one merchant's: the global log (its
  sequencer is the one single writer), reconciliation of bank statements (a statement line
  clears many merchants' payments), officers' proposals, verification runs, jobs.
"""

from __future__ import annotations

# table -> its merchant column. A chain's primary key is its merchant's id (ledger.Chain), so
# ``chain_id`` holds merchant ids too.
DISTRIBUTED: dict[str, str] = {
    # The evidence: chains, entries, the read models projected from them, the log's queue.
    "ledger_chain": "merchant_id",
    "ledger_entry": "chain_id",
    "ledger_order": "merchant_id",
    "ledger_invoice": "merchant_id",
    "ledger_shipment": "merchant_id",
    "ledger_payout": "merchant_id",
    "ledger_logpending": "chain_id",
    # Financing: what the bank funds, and the settlement of it.
    "financing_receivable": "merchant_id",
    "financing_facility": "merchant_id",
    "financing_advance": "merchant_id",
    "financing_assignment": "merchant_id",
    "financing_blacklisting": "merchant_id",
    "financing_duplicateclearance": "merchant_id",
    "financing_earlywarning": "merchant_id",
    "financing_settlementwork": "merchant_id",
    "financing_lineallocation": "merchant_id",
    "financing_suspenseitem": "merchant_id",
    "financing_recourse": "merchant_id",
    "financing_payment": "merchant_id",
    # The books. books_account's rows with no merchant (the bank's own accounts) are reference
    # data: a hot transaction moves its merchant's shard of them (books_accountshard), never
    # the row itself, and the tests check that every row it writes is the merchant's.
    "books_account": "merchant_id",
    "books_journalentry": "merchant_id",
    "books_posting": "merchant_id",
    "books_accountshard": "merchant_id",
}

REFERENCE: frozenset[str] = frozenset(
    {
        "merchants_merchant",
        "merchants_marketplace",
        "merchants_marketplacemerchant",
        "merchants_debtor",
        "merchants_membership",
        "merchants_apikey",
        "merchants_bankaccount",
        "financing_debtorlimit",
        "financing_webhookendpoint",
        "financing_matchrule",
    }
)

# table -> why it is not one merchant's.
BANK_WIDE: dict[str, str] = {
    "ledger_logstate": "the global log: the sequencer's singleton, one writer",
    "ledger_logleaf": "the global log: written by the sequencer alone",
    "ledger_lognode": "the global log: written by the sequencer alone",
    "ledger_logcheckpoint": "the global log: written by the sequencer alone",
    "ledger_witness": "the global log's witnesses",
    "ledger_cosignature": "the global log's witnesses' cosignatures",
    "ledger_ledgerverification": "a verification run over every chain",
    "books_booksverification": "a verification run over the whole books",
    "ledger_idempotentrequest": (
        "an API request's record, keyed by the marketplace that sent it: one batch may carry "
        "events of many merchants"
    ),
    "financing_riskchange": "officers' four-eyes proposals, of any kind",
    "financing_facilitychange": "officers' history of facility terms",
    "financing_assignmentnotice": "notices to debtors: no merchant column yet (README)",
    "financing_noticeattempt": "deliveries of notices to debtors: no merchant column yet",
    "financing_deadletter": "work an officer must look at, of any merchant",
    "financing_reconjob": "reconciliation of a marketplace's settlement report",
    "financing_break": "reconciliation breaks: a report or statement line, merchant optional",
    "financing_paymentbatch": "a payment file of many merchants' payments",
    "financing_bankstatement": "the bank's statements",
    "financing_statemententry": "the bank's statement lines",
    "financing_match": "a statement line matched to many merchants' payments",
    "financing_matchitem": "a statement line matched to many merchants' payments",
}

# Tables a hot transaction may write besides the distributed ones, and why that is sound.
WRITTEN_BESIDE: dict[str, str] = {
    "ledger_idempotentrequest": (
        "the API's idempotency record commits with the events it answers for; distributed by "
        "its own key, it costs an API request a second shard (two-phase commit), never a row "
        "another merchant's transaction waits on"
    ),
}
