"""The merchant credit file: one page with facility, exposure, recourse, advances, risk and the
chain.

Read-only: what an officer reads before deciding. Changes go through the facility and
blacklist admins and the review queue, each through its service.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from config.admin_mixins import ReadOnlyAdminMixin
from financing.admin.formatting import percent_of_bp
from financing.exposure import exposure_by_merchant
from financing.models import Advance, Blacklisting, Facility, MerchantFile
from financing.risk import grade_of
from financing.settlement_selectors import recourse_balances
from ledger.models import Entry
from ledger.money import Money

ADVANCES_SHOWN = 15
ENTRIES_SHOWN = 15


@admin.register(MerchantFile)
class MerchantFileAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[MerchantFile]):
    list_display = ["legal_name", "public_id", "country", "status", "kyc_status"]
    list_filter = ["status", "kyc_status", "country"]
    search_fields = ["legal_name", "public_id", "tax_id"]
    overview_template = "admin/financing/merchantfile/overview.html"

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The credit file of one merchant."""
        merchant = self.get_object(request, object_id)
        if merchant is None:
            raise Http404(f"No merchant {object_id}.")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": merchant.legal_name,
            "subtitle": f"{merchant.public_id} · {merchant.country} · KYC {merchant.kyc_status}",
            "merchant": merchant,
            **merchant_file(merchant.pk),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.overview_template, context)


def merchant_file(merchant_id: int) -> dict[str, Any]:
    """What the credit file shows, formatted for the page."""
    facilities = Facility.objects.filter(merchant_id=merchant_id).order_by("-active", "currency")
    advances = Advance.objects.filter(merchant_id=merchant_id).order_by("-requested_at", "-id")
    open_risk = [
        a.risk_score for a in advances if a.status in (*Advance.OPEN, *Advance.OUTSTANDING)
    ]
    blacklisting = Blacklisting.objects.filter(merchant_id=merchant_id, lifted_at=None).first()
    entries = Entry.objects.filter(chain__merchant_id=merchant_id).order_by("-seq")
    return {
        "facilities": [
            {
                "row": f,
                "url": reverse("admin:financing_facility_change", args=[quote(f.pk)]),
                "limit": Money.display(f.limit_minor, f.currency),
                "committed": Money.display(f.committed_minor, f.currency),
                "threshold": Money.display(f.checker_threshold_minor, f.currency),
                "advance_rate": percent_of_bp(f.advance_rate_bp),
                "annual_rate": percent_of_bp(f.annual_rate_bp),
            }
            for f in facilities
        ],
        "exposure": [
            {
                "row": e,
                "outstanding": Money.display(e.outstanding_minor, e.currency),
                "late_fees": Money.display(e.late_fees_minor, e.currency),
                "committed": Money.display(e.committed_minor, e.currency),
                "limit": Money.display(e.limit_minor, e.currency),
                "utilisation": "—" if e.utilisation is None else f"{e.utilisation} %",
            }
            for e in exposure_by_merchant(merchant_id=merchant_id)
        ],
        "advances": [
            {
                "row": a,
                "url": reverse("admin:financing_advance_change", args=[quote(a.pk)]),
                "face": Money.display(a.face_minor, a.currency),
                "advance": Money.display(a.advance_minor, a.currency),
                "risk": f"{a.risk_score} ({grade_of(a.risk_score)})",
            }
            for a in advances[:ADVANCES_SHOWN]
        ],
        "advance_count": advances.count(),
        "recourse": [
            {
                "currency": r.currency,
                "raised": Money.display(r.raised_minor, r.currency),
                "open": Money.display(r.open_minor, r.currency),
                "owes": r.open_minor > 0,
            }
            for r in recourse_balances(merchant_id=merchant_id)
        ],
        "recourse_url": reverse("admin:financing_recourse_changelist")
        + f"?merchant__id__exact={merchant_id}",
        "risk": {
            "worst": max(open_risk, default=None),
            "worst_grade": grade_of(max(open_risk)) if open_risk else "",
            "open": len(open_risk),
            "blacklisting": blacklisting,
        },
        "entries": [
            {"row": e, "url": reverse("admin:ledger_entry_change", args=[quote(e.pk)])}
            for e in entries[:ENTRIES_SHOWN]
        ],
        "advances_url": reverse("admin:financing_advance_changelist")
        + f"?merchant__id__exact={merchant_id}&queue=all",
        "entries_url": reverse("admin:ledger_entry_changelist")
        + f"?chain__merchant__id__exact={merchant_id}",
    }
