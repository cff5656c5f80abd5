"""Idempotency-Key handling for POSTs: replay, refuse a changed body, refuse a concurrent twin."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone
from rest_framework.request import Request

from config.api.problems import ApiProblem
from ledger.models import IdempotentRequest

# A claim older than this belongs to a request that died mid-way; a retry may take it over.
STALE_CLAIM = timedelta(minutes=5)


def _key(request: Request) -> str:
    key = request.headers.get("Idempotency-Key", "")
    if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
        raise ApiProblem(
            400,
            "idempotency_key_required",
            "Every POST needs an Idempotency-Key header.",
            "Send 'Idempotency-Key: <1 to 255 printable ASCII characters>', unique per operation.",
        )
    return key


def _fingerprint(request: Request) -> str:
    digest = hashlib.sha256(f"{request.method} {request.get_full_path()}\n".encode())
    digest.update(request._request.body)
    return digest.hexdigest()


def idempotent(request: Request, scope: str, work: Callable[[], HttpResponse]) -> HttpResponse:
    """Run ``work`` once per (scope, Idempotency-Key); later calls get its response replayed.

    ``work`` must render its response itself and do its writes in the current transaction.

    :raises ApiProblem: 400 without a key, 409 while the first request runs, 422 when the key
        was used for a different request.
    """
    key, fingerprint = _key(request), _fingerprint(request)
    claim = _claim(scope, key, fingerprint)
    if isinstance(claim, HttpResponse):
        return claim
    try:
        with transaction.atomic():
            response = work()
            IdempotentRequest.objects.filter(pk=claim.pk).update(
                state=IdempotentRequest.State.DONE,
                response_status=response.status_code,
                response_content_type=response["Content-Type"],
                response_body=response.content,
            )
    except BaseException:
        # Nothing was written; free the key so a corrected retry is not answered from here.
        IdempotentRequest.objects.filter(
            pk=claim.pk, state=IdempotentRequest.State.IN_FLIGHT
        ).delete()
        raise
    return response


def _claim(scope: str, key: str, fingerprint: str) -> IdempotentRequest | HttpResponse:
    now = timezone.now()
    try:
        with transaction.atomic():
            return IdempotentRequest.objects.create(
                scope=scope, key=key, fingerprint=fingerprint, claimed_at=now
            )
    except IntegrityError:
        pass
    earlier = IdempotentRequest.objects.filter(scope=scope, key=key).first()
    if earlier is None:  # the first attempt failed and released the key meanwhile
        return _claim(scope, key, fingerprint)
    if earlier.fingerprint != fingerprint:
        raise ApiProblem(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was used for another request.",
            "Use a new key for a new request; reuse a key only to retry the identical request.",
        )
    if earlier.state == IdempotentRequest.State.DONE:
        replay = HttpResponse(
            bytes(earlier.response_body or b""),
            status=earlier.response_status,
            content_type=earlier.response_content_type,
        )
        replay["Idempotent-Replayed"] = "true"
        return replay
    taken_over = IdempotentRequest.objects.filter(
        pk=earlier.pk, state=IdempotentRequest.State.IN_FLIGHT, claimed_at__lt=now - STALE_CLAIM
    ).update(claimed_at=now)
    if taken_over:
        return earlier
    raise ApiProblem(
        409,
        "request_in_flight",
        "A request with this Idempotency-Key is still being processed.",
        "Retry after it completes; you will then get its response.",
        headers={"Retry-After": "1"},
    )
