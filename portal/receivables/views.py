"""Receivables: the filtered list with reasons in words, one's evidence, its receipt."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from portal.access import merchant_required, portal_context
from portal.receivables.reasons import reasons_in_words
from portal.receivables.selectors import (
    Status,
    receivable_detail,
    receivable_filter_from,
    receivable_receipt,
    receivables_for_merchant,
    receivables_judged,
)

PAGE_SIZE = 25


@merchant_required
def receivable_list(request: HttpRequest) -> HttpResponse:
    portal = portal_context(request)
    filters = receivable_filter_from(request.GET)
    today = timezone.localdate()
    listed = receivables_for_merchant(merchant=portal.merchant, today=today, filters=filters)
    page = Paginator(listed, PAGE_SIZE).get_page(request.GET.get("page"))
    shown = receivables_judged(merchant=portal.merchant, today=today, listed=list(page.object_list))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "portal": portal,
        "nav": "receivables",
        "page": page,
        "rows": [(row, reasons_in_words(row.verdict)) for row in shown],
        "filters": filters,
        "statuses": Status.ALL,
        "query": query.urlencode(),
    }
    template = (
        "portal/receivables/_table.html"
        if request.headers.get("HX-Request")
        else "portal/receivables/list.html"
    )
    return render(request, template, context)


@merchant_required
def receivable_show(request: HttpRequest, ref: str) -> HttpResponse:
    portal = portal_context(request)
    detail = receivable_detail(merchant=portal.merchant, ref=ref, today=timezone.localdate())
    if detail is None:
        raise Http404("No such receivable.")
    return render(
        request,
        "portal/receivables/detail.html",
        {
            "portal": portal,
            "nav": "receivables",
            "detail": detail,
            "reasons": reasons_in_words(detail.row.verdict),
        },
    )


@merchant_required
def receivable_receipt_download(request: HttpRequest, ref: str) -> HttpResponse:
    portal = portal_context(request)
    detail = receivable_detail(merchant=portal.merchant, ref=ref, today=timezone.localdate())
    if detail is None:
        raise Http404("No such receivable.")
    receipt = receivable_receipt(merchant=portal.merchant, detail=detail, now=timezone.now())
    response = JsonResponse(receipt, json_dumps_params={"indent": 2, "ensure_ascii": False})
    filename = f"receipt-{portal.merchant.public_id}-{detail.row.ref}.json"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in filename)
    response["Content-Disposition"] = f'attachment; filename="{safe}"'
    return response
