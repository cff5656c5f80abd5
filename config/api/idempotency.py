"""Idempotency-Key handling for POSTs: replay, refuse a changed body, refuse a concurrent twin.

Every POST of both APIs (ledger/api, financing/api) answers through ``idempotent``; the record of
each key is a ledger.models.IdempotentRequest row, written in the transaction that does the
work, so a replay can never describe an effect that did not happen.

Who is still running a key is decided by something that dies with the request:

* PostgreSQL: a transaction-level advisory lock on a 64-bit hash of (scope, key), the first
  statement of the transaction that does the work and stores the response. COMMIT, ROLLBACK or
  the server noticing a dropped connection (a killed worker) ends it, so a retry after a crash
  proceeds at once, and only one retry does. Unlike a session-level lock it cannot outlive the
  request on a persistent (CONN_MAX_AGE) or pooled connection, needs no release on any path, and
  holds behind a transaction-pooling PgBouncer. No in-flight row is written.
* Elsewhere (SQLite, the demo): an ``in_flight`` row committed before the work; a claim older
  than STALE_CLAIM belongs to a request that died and a retry takes it over.

An in-flight row seen on PostgreSQL can only come from a process running older code (a rolling
deploy); it is honoured the SQLite way, until it is stale.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.http import HttpResponse
from django.utils import timezone
from rest_framework.request import Request

from config.api.problems import ApiProblem
from ledger.models import IdempotentRequest
from ledger.sql import models_read, placeholders

# A claim row older than this belongs to a request that died mid-way; a retry may take it over.
STALE_CLAIM = timedelta(minutes=5)

# Set on the HttpRequest by the authentication when a spent signature may only fetch the stored
# response of exactly this request: (scope, that response).
_REPLAY_ONLY = "chainfin_replay_only"


def idempotent(request: Request, scope: str, work: Callable[[], HttpResponse]) -> HttpResponse:
    """Run ``work`` once per (scope, Idempotency-Key); later calls get its response replayed.

    ``work`` must render its response itself and do its writes in the current transaction.

    :raises ApiProblem: 400 without a key, 409 while the first request runs, 422 when the key
        was used for a different request, 401 when a spent signature asks for anything but the
        stored response.
    """
    key, fingerprint = _key(request), _fingerprint(request)
    replay_only: tuple[str, HttpResponse] | None = getattr(request._request, _REPLAY_ONLY, None)
    if replay_only is not None:
        marked_scope, stored = replay_only
        if marked_scope != scope:
            raise _signature_spent()
        return stored
    if connection.vendor == "postgresql":
        return _run_locked(scope, key, fingerprint, work)
    return _run_claimed(scope, key, fingerprint, work)


def replay_only_mark(request: Request, *, scope: str) -> bool:
    """Let a request whose signature was already used through only to fetch a stored response.

    True when the response to exactly this request (same scope, Idempotency-Key, method, path
    with query and body) is stored: ``idempotent`` then answers with it and runs nothing. False
    otherwise (no or another key, a changed request, the first still running, nothing stored).
    """
    try:
        key = _key(request)
    except ApiProblem:
        return False
    earlier = IdempotentRequest.objects.filter(scope=scope, key=key).first()
    if earlier is None or earlier.fingerprint != _fingerprint(request):
        return False
    if earlier.state != IdempotentRequest.State.DONE:
        return False
    setattr(request._request, _REPLAY_ONLY, (scope, _replay(earlier)))
    return True


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


def _lock_id(scope: str, key: str) -> int:
    """The advisory lock's bigint for (scope, key); a collision only makes a twin wait its turn."""
    digest = hashlib.sha256(f"idempotency\n{scope}\n{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _run_locked(
    scope: str, key: str, fingerprint: str, work: Callable[[], HttpResponse]
) -> HttpResponse:
    """PostgreSQL: the lock is the claim; it ends with this transaction, however that ends."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_lock_id(scope, key)])
            (held,) = cursor.fetchone()
        # Read after the lock, in a statement of its own: under READ COMMITTED it then sees
        # whatever the previous holder committed before letting go.
        earlier = _earlier(scope, key)
        if earlier is not None:
            answer = _answer(earlier, fingerprint)
            if answer is not None:
                return answer
            if earlier.claimed_at >= timezone.now() - STALE_CLAIM:
                raise _in_flight()  # an in-flight row written by older code, still running
        if not held:
            raise _in_flight()
        response = work()
        if earlier is None:
            _record(scope, key, fingerprint, response)
        else:
            IdempotentRequest.objects.filter(
                pk=earlier.pk, state=IdempotentRequest.State.IN_FLIGHT
            ).update(**_stored(response))
    return response


# Every POST of both APIs reads and writes its key once, so on PostgreSQL as SQL: the ORM's
# query building, model instance and save machinery were 15 % of a single-event POST's CPU
# (py-spy).
def _earlier(scope: str, key: str) -> IdempotentRequest | None:
    """The record of a key, if there is one (one at most: scope and key are unique)."""
    found = models_read(IdempotentRequest, "scope = %s AND key = %s", [scope, key])
    return found[0] if found else None


def _record(scope: str, key: str, fingerprint: str, response: HttpResponse) -> None:
    row: dict[str, Any] = {"scope": scope, "key": key, "fingerprint": fingerprint}
    row["claimed_at"] = timezone.now()
    row |= _stored(response)
    sql = (
        f"INSERT INTO ledger_idempotentrequest ({', '.join(row)})"  # noqa: S608  (our names)
        f" VALUES ({placeholders(len(row))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, list(row.values()))


def _run_claimed(
    scope: str, key: str, fingerprint: str, work: Callable[[], HttpResponse]
) -> HttpResponse:
    """Without advisory locks: a committed in-flight row is the claim."""
    claim = _claim(scope, key, fingerprint)
    if isinstance(claim, HttpResponse):
        return claim
    try:
        with transaction.atomic():
            response = work()
            IdempotentRequest.objects.filter(pk=claim.pk).update(**_stored(response))
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
    answer = _answer(earlier, fingerprint)
    if answer is not None:
        return answer
    taken_over = IdempotentRequest.objects.filter(
        pk=earlier.pk, state=IdempotentRequest.State.IN_FLIGHT, claimed_at__lt=now - STALE_CLAIM
    ).update(claimed_at=now)
    if taken_over:
        return earlier
    raise _in_flight()


def _answer(earlier: IdempotentRequest, fingerprint: str) -> HttpResponse | None:
    """The replay of a finished request; None while it is in flight.

    :raises ApiProblem: 422 when the key was used for another request.
    """
    if earlier.fingerprint != fingerprint:
        raise ApiProblem(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was used for another request.",
            "Use a new key for a new request; reuse a key only to retry the identical request.",
        )
    if earlier.state == IdempotentRequest.State.DONE:
        return _replay(earlier)
    return None


def _replay(earlier: IdempotentRequest) -> HttpResponse:
    replay = HttpResponse(
        bytes(earlier.response_body or b""),
        status=earlier.response_status,
        content_type=earlier.response_content_type,
    )
    replay["Idempotent-Replayed"] = "true"
    return replay


def _stored(response: HttpResponse) -> dict[str, object]:
    return {
        "state": IdempotentRequest.State.DONE,
        "response_status": response.status_code,
        "response_content_type": response["Content-Type"],
        "response_body": response.content,
    }


def _in_flight() -> ApiProblem:
    return ApiProblem(
        409,
        "request_in_flight",
        "A request with this Idempotency-Key is still being processed.",
        "Retry after it completes; you will then get its response.",
        headers={"Retry-After": "1"},
    )


def _signature_spent() -> ApiProblem:
    return ApiProblem(
        401,
        "replayed_signature",
        "The request is not authenticated.",
        "This signature was already used.",
        headers={"WWW-Authenticate": 'Bearer realm="chainfin"'},
    )
