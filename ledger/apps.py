from django.apps import AppConfig


class LedgerConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "ledger"
    verbose_name = "Evidence ledger"

    def ready(self) -> None:
        # Projectors register themselves into the registry when their module is imported.
        from ledger.projections import projectors  # noqa: F401
