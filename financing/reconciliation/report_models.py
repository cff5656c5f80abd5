"""The reconciliation jobs as officers see them: the ``ReconJob`` rows of one kind each.

Proxies, so the settlement report and bank statement jobs have an admin (and the reports an
upload permission) of their own, with no table or column of their own; each admin filters the
rows by kind. Bank statements are uploaded under ``financing.add_bankstatement``.
"""

from __future__ import annotations

from financing.reconciliation.models import ReconJob


class SettlementReportJob(ReconJob):
    class Meta:
        proxy = True
        verbose_name = "settlement report"
        permissions = [("upload_settlementreport", "Can upload a marketplace settlement report")]


class BankStatementJob(ReconJob):
    class Meta:
        proxy = True
        verbose_name = "bank statement import"
