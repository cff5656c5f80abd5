"""The evidence ledger: one hash chain per merchant, and the read models projected from it."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from ledger.canonical import GENESIS_PREV
from merchants.models import Merchant

_HEX64 = r"^[0-9a-f]{64}$"


class Chain(models.Model):
    """The head of one merchant's chain. Appends to a merchant serialize on this row."""

    merchant = models.OneToOneField(
        Merchant, on_delete=models.PROTECT, primary_key=True, related_name="chain"
    )
    head_seq = models.BigIntegerField(default=0)
    head_hash = models.CharField(max_length=64, default=GENESIS_PREV)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(head_seq__gte=0), name="chain_head_seq_nonnegative"),
            models.CheckConstraint(
                condition=Q(head_hash__regex=_HEX64), name="chain_head_hash_hex"
            ),
        ]

    def __str__(self) -> str:
        return f"chain of merchant {self.merchant_id} at seq {self.head_seq}"


class Entry(models.Model):
    """One appended piece of evidence. ``body`` holds the exact canonical bytes that were hashed.

    The other columns are queryable copies of fields inside ``body``; ``body`` is the truth.
    Database triggers refuse UPDATE, DELETE and TRUNCATE (migration 0002).
    """

    # No index of its own: UNIQUE(chain, seq) leads with chain and serves every lookup.
    chain = models.ForeignKey(
        Chain, on_delete=models.PROTECT, related_name="entries", db_index=False
    )
    seq = models.BigIntegerField()
    type = models.CharField(max_length=64)
    source = models.CharField(max_length=64)
    external_ref = models.CharField(max_length=128)
    idempotency_key = models.CharField(max_length=255)
    # SHA-256 of what the sender asked for (merchant, type, ref, occurred_at, data), so a retry
    # with the same key can be told apart from a different event reusing it.
    request_hash = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    body = models.BinaryField()

    class Meta:
        verbose_name_plural = "entries"
        constraints = [
            models.UniqueConstraint(fields=["chain", "seq"], name="entry_seq_unique"),
            models.UniqueConstraint(fields=["hash"], name="entry_hash_unique"),
            # Two entries with the same predecessor would be a fork.
            models.UniqueConstraint(fields=["chain", "prev_hash"], name="entry_no_fork"),
            models.UniqueConstraint(
                fields=["source", "idempotency_key"], name="entry_idempotency_key_unique"
            ),
            models.CheckConstraint(
                condition=(
                    Q(seq=1, prev_hash=GENESIS_PREV) | (Q(seq__gt=1) & ~Q(prev_hash=GENESIS_PREV))
                ),
                name="entry_genesis_iff_first",
            ),
            models.CheckConstraint(
                condition=Q(hash__regex=_HEX64) & Q(prev_hash__regex=_HEX64),
                name="entry_hashes_hex",
            ),
        ]
        indexes = [models.Index(fields=["chain", "external_ref"], name="entry_chain_ref_idx")]

    def __str__(self) -> str:
        return f"{self.chain_id}#{self.seq} {self.type} {self.external_ref}"


class _Projection(models.Model):
    """A read model written only by projectors, in the transaction of the entry it comes from."""

    # Neither key gets an index of its own: each table's UNIQUE(merchant, ref) leads with the
    # merchant, and nothing looks projections up by entry; every index costs every append.
    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    ref = models.CharField(max_length=128)
    source = models.CharField(max_length=64)
    entry = models.ForeignKey(Entry, on_delete=models.PROTECT, related_name="+", db_index=False)

    class Meta:
        abstract = True


class Order(_Projection):
    class Status(models.TextChoices):
        PLACED = "placed", "Placed"
        CANCELLED = "cancelled", "Cancelled"

    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLACED)
    placed_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)
    buyer_id = models.CharField(max_length=128, blank=True)
    buyer_name = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "ref"], name="order_ref_unique"),
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="order_amount_positive"),
            models.CheckConstraint(
                condition=Q(status__in=["placed", "cancelled"]), name="order_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"order {self.ref}"


class Invoice(_Projection):
    class Status(models.TextChoices):
        ISSUED = "issued", "Issued"
        PARTIALLY_CREDITED = "partially_credited", "Partially credited"
        CREDITED = "credited", "Credited"

    order_ref = models.CharField(
        max_length=128, blank=True, help_text="The order it bills; blank until linked."
    )
    order_linked_seq = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Seq of the entry that linked it to its order: its place among the order's"
        " invoices.",
    )
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField()
    credited_minor = models.BigIntegerField(default=0)
    paid_minor = models.BigIntegerField(
        default=0, help_text="What payouts' lines naming this invoice have paid of it."
    )
    issue_date = models.DateField()
    due_date = models.DateField()
    debtor_kind = models.CharField(max_length=16)
    debtor_name = models.CharField(max_length=200)
    debtor_tax_id = models.CharField(max_length=40, blank=True)
    debtor_country = models.CharField(max_length=2, blank=True)
    supplier_tax_id = models.CharField(max_length=40, blank=True)
    payee_third_party = models.BooleanField(
        default=False, help_text="Payable to someone other than the supplier: assigned elsewhere."
    )
    payee_name = models.CharField(max_length=200, blank=True)
    payee_id = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.ISSUED)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "ref"], name="invoice_ref_unique"),
            models.CheckConstraint(
                condition=Q(order_ref="", order_linked_seq__isnull=True)
                | (~Q(order_ref="") & Q(order_linked_seq__gte=1)),
                name="invoice_order_link_complete",
            ),
            models.CheckConstraint(
                condition=Q(payee_third_party=True) | Q(payee_name="", payee_id=""),
                name="invoice_payee_only_if_third_party",
            ),
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="invoice_amount_positive"),
            models.CheckConstraint(
                condition=Q(credited_minor__gte=0, credited_minor__lte=models.F("amount_minor")),
                name="invoice_credit_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(due_date__gte=models.F("issue_date")), name="invoice_due_after_issue"
            ),
            models.CheckConstraint(
                condition=Q(paid_minor__gte=0), name="invoice_paid_not_negative"
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "order_ref"], name="invoice_order_idx"),
            # A merchant's invoices by due date, in the order the portal lists them: those still
            # to fall due (financing.eligibility.open_verdicts) without reading its paid history,
            # and a page of the receivables list without sorting every invoice. Due dates and
            # refs never change, so payouts stay HOT updates.
            models.Index(fields=["merchant", "due_date", "ref"], name="invoice_due_ref_idx"),
        ]

    def __str__(self) -> str:
        return f"invoice {self.ref}"


class Shipment(_Projection):
    class Status(models.TextChoices):
        DISPATCHED = "dispatched", "Dispatched"
        DELIVERED = "delivered", "Delivered"
        RETURNED = "returned", "Returned"

    order_ref = models.CharField(max_length=128)
    status = models.CharField(max_length=16, choices=Status.choices)
    carrier = models.CharField(max_length=200, blank=True)
    tracking_number = models.CharField(max_length=128, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    returned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "ref"], name="shipment_ref_unique"),
            models.CheckConstraint(
                condition=Q(status__in=["dispatched", "delivered", "returned"]),
                name="shipment_status_valid",
            ),
        ]
        indexes = [models.Index(fields=["merchant", "order_ref"], name="shipment_order_idx")]

    def __str__(self) -> str:
        return f"shipment {self.ref}"


class Payout(_Projection):
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField()
    settled_on = models.DateField()
    lines = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "ref"], name="payout_ref_unique"),
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="payout_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"payout {self.ref}"


class LedgerVerification(models.Model):
    """One run of the chain verifier, so officers can see when the ledger was last proven intact."""

    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        INTACT = "intact", "Intact"
        BROKEN = "broken", "Broken"

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    chains_checked = models.BigIntegerField(default=0)
    entries_checked = models.BigIntegerField(default=0)
    broken_merchant = models.CharField(max_length=40, blank=True)
    broken_seq = models.BigIntegerField(null=True, blank=True)
    problem = models.TextField(blank=True)
    # The log's head this run proved the entries match, so a later rewrite of the whole log
    # still contradicts what an earlier run saw and recorded.
    log_size = models.BigIntegerField(null=True, blank=True)
    log_root = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-started_at"]
        get_latest_by = "started_at"

    def __str__(self) -> str:
        return f"verification {self.started_at:%Y-%m-%d %H:%M} {self.outcome}"


class IdempotentRequest(models.Model):
    """A POST seen under an Idempotency-Key, and the response it got (Stripe's semantics).

    The response is stored in the same transaction as the work's effect, so a replay can never
    describe an effect that did not happen. While the work runs, a concurrent duplicate gets 409:
    on PostgreSQL because the first holds an advisory lock that ends with its transaction (no
    row until then), elsewhere because the row was claimed (``in_flight``, ``claimed_at``) in a
    transaction of its own first (config/api/idempotency.py).
    """

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight", "In flight"
        DONE = "done", "Done"

    scope = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_FLIGHT)
    claimed_at = models.DateTimeField()
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_content_type = models.CharField(max_length=100, blank=True)
    response_body = models.BinaryField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotentrequest_key_unique"),
            models.CheckConstraint(
                condition=Q(state="in_flight") | Q(state="done", response_status__isnull=False),
                name="idempotentrequest_done_has_response",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.key} ({self.state})"


# --- The global log (ledger/log/): every entry's place, the Merkle tree, signed checkpoints ----


class LogState(models.Model):
    """The one row the sequencer locks: at most one sequencer runs, and ``tree_size`` leaves
    have been given their place. Created by the migration that made the log."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    tree_size = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="logstate_singleton"),
            models.CheckConstraint(condition=Q(tree_size__gte=0), name="logstate_size_nonnegative"),
        ]

    def __str__(self) -> str:
        return f"log of {self.tree_size} entries"


class LogPending(models.Model):
    """An entry committed but not yet sequenced. A database trigger on ledger_entry inserts the
    row in the append's own transaction, so an entry that commits late is queued when it
    commits, whatever its id; the sequencer deletes exactly the rows it sequenced."""

    # No foreign key constraint: the trigger inserts the id of the row it fired for, so a check
    # would cost every append a lookup and prove nothing.
    entry = models.OneToOneField(
        Entry, on_delete=models.DO_NOTHING, primary_key=True, related_name="+", db_constraint=False
    )
    # The entry's chain (its merchant's id), copied by the same trigger: every row an append
    # writes carries the merchant, so the queue can be distributed by merchant with the entries
    # (config/distribution.py); the sequencer reads it across them all.
    chain = models.ForeignKey(
        Chain, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )

    def __str__(self) -> str:
        return f"entry {self.entry_id} waiting for the log"


class LogLeaf(models.Model):
    """An entry's place in the global log: leaf ``log_index`` is SHA-256(0x00 || entry hash).
    Append-only (trigger, like entries)."""

    log_index = models.BigIntegerField(primary_key=True)
    entry = models.OneToOneField(Entry, on_delete=models.PROTECT, related_name="log_leaf")
    sequenced_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(log_index__gte=0), name="logleaf_index_nonnegative")
        ]

    def __str__(self) -> str:
        return f"log #{self.log_index}"


class LogNode(models.Model):
    """A complete subtree of the log's Merkle tree: the root of leaves [index·2^level,
    (index+1)·2^level). Written once when its last leaf arrives; append-only (trigger)."""

    pk = models.CompositePrimaryKey("level", "index")
    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.BinaryField(max_length=32)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(level__lte=63, index__gte=0), name="lognode_position_valid"
            )
        ]

    def __str__(self) -> str:
        return f"node {self.level}/{self.index}"


class LogCheckpoint(models.Model):
    """A signed tree head: the C2SP checkpoint note as the bank signed it. Append-only."""

    tree_size = models.BigIntegerField(primary_key=True)
    root_hash = models.BinaryField(max_length=32)
    note = models.TextField(help_text="The signed note: checkpoint text and the bank's signature.")
    signed_at = models.DateTimeField()

    class Meta:
        get_latest_by = "tree_size"
        constraints = [
            models.CheckConstraint(condition=Q(tree_size__gte=0), name="logcheckpoint_size_valid")
        ]

    def __str__(self) -> str:
        return f"checkpoint at {self.tree_size}"


class Witness(models.Model):
    """A party that cosigns checkpoints (c2sp.org/tlog-cosignature), registered with the bank."""

    name = models.CharField(max_length=200, unique=True, help_text="Its key name.")
    vkey = models.CharField(max_length=300, unique=True, help_text="Its verifier key (0x04).")
    party = models.CharField(max_length=200, help_text="Who runs it: a marketplace, an auditor.")
    registered_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "witnesses"

    def __str__(self) -> str:
        return f"{self.name} ({self.party})"


class Cosignature(models.Model):
    """A witness's statement that it saw checkpoint ``checkpoint`` consistent with the last one
    it saw, as the signature line it sent (verified before storing)."""

    witness = models.ForeignKey(Witness, on_delete=models.PROTECT, related_name="cosignatures")
    checkpoint = models.ForeignKey(
        LogCheckpoint, on_delete=models.PROTECT, related_name="cosignatures"
    )
    line = models.CharField(max_length=400, help_text="The note signature line, as sent.")
    cosigned_at = models.DateTimeField(help_text="The timestamp inside the cosignature.")
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["witness", "checkpoint"], name="cosignature_one_per_witness"
            )
        ]

    def __str__(self) -> str:
        return f"{self.witness.name} cosigned {self.checkpoint_id}"
