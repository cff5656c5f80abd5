from django.apps import AppConfig


class BooksConfig(AppConfig):
    """The double-entry journal: accounts, balanced entries, postings, balances.

    An app of its own so its tables and invariants stand apart from the business that uses them:
    it knows nothing of advances, only that every entry balances per currency.
    """

    default_auto_field = "django.db.models.BigAutoField"
    name = "financing.books"
    label = "books"
    verbose_name = "Books (double-entry journal)"
