"""Reconciliation breaks in the officer admin, one module per use case: the queue
(``queue``), resolving with a reason or a four-eyes adjustment (``resolution``), and ageing
(``ageing``). Importing the queue registers the admin."""

from financing.admin.breaks import ageing, queue, resolution

__all__ = ["ageing", "queue", "resolution"]
