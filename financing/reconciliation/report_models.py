"""The settlement report jobs as officers see them: the ``ReconJob`` rows of that kind.

A proxy, so the settlement report admin has a model (and an upload permission) of its own
beside the bank statement jobs' admin, with no table or column of its own; the admin filters
the rows by kind.
"""

from __future__ import annotations

from financing.reconciliation.models import ReconJob


class SettlementReportJob(ReconJob):
    class Meta:
        proxy = True
        verbose_name = "settlement report"
        permissions = [("upload_settlementreport", "Can upload a marketplace settlement report")]
