"""Reconciliation: the three records of money (marketplace reports, bank statements, Chainfin's
ledger and books) matched by Celery jobs, every difference a break for officers (issue 10)."""
