from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


class FinancingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "financing"
    verbose_name = "Financing"

    def ready(self) -> None:
        # Registers the receivable projector and the settlement outbox into the ledger's
        # registry (DESIGN §2) with the projector that closes settlement report breaks a payout
        # clears, and the check of the financing tables against the chain into
        # the books' checks (verify_books and its nightly run).
        from financing import integrity, projectors, settlement_outbox  # noqa: F401
        from financing.reconciliation import report_breaks  # noqa: F401
        from financing.roles import officer_groups_sync

        # After the last of the roles' apps has its permissions (books comes after financing).
        post_migrate.connect(
            officer_groups_sync,
            sender=apps.get_app_config("books"),
            dispatch_uid="financing.officer_groups",
        )
