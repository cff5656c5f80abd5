"""The settlement report jobs as officers see them: the ``ReconJob`` rows of that kind.

A proxy, so the settlement report admin has a model of its own beside the bank statement
jobs' admin, with no table or column of its own.
"""

from __future__ import annotations

from django.db import models

from financing.reconciliation.models import ReconJob


class SettlementReportJobManager(models.Manager["SettlementReportJob"]):
    def get_queryset(self) -> models.QuerySet[SettlementReportJob]:
        return super().get_queryset().filter(kind=ReconJob.Kind.SETTLEMENT_REPORT)


class SettlementReportJob(ReconJob):
    objects = SettlementReportJobManager()

    class Meta:
        proxy = True
        verbose_name = "settlement report"
        permissions = [("upload_settlementreport", "Can upload a marketplace settlement report")]
