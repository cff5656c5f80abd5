"""Per-credential rate limits on an atomic counter (Redis INCR in production).

DRF's own throttles read, modify and write a list in the cache, so concurrent requests can all
pass; an atomic increment cannot be fooled that way.

Every signed request makes two cache writes (its replay mark, this counter), so on Redis they
go through ``redis_client()`` rather than the cache API: Django's RedisCache builds a new client
for every call, which cost more CPU than the commands, and its ``incr`` is two round trips.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

WINDOW_SECONDS = 60

_kept = threading.local()  # this thread's cache backend and its client, as backends are per thread


def redis_client() -> Any | None:
    """A Redis client on the default cache's pool when that cache is Redis, else None."""
    backend = caches[DEFAULT_CACHE_ALIAS]
    if not isinstance(backend, RedisCache):
        return None
    if getattr(_kept, "backend", None) is not backend:
        # Django keeps the pool in a private attribute and offers only a client per call.
        factory = backend._cache  # type: ignore[attr-defined]
        _kept.backend, _kept.client = backend, factory.get_client(write=True)
    return _kept.client


def cache_add(key: str, value: int, timeout: int) -> bool:
    """``cache.add(key, value, timeout)``: the same key and value, on a kept client."""
    client = redis_client()
    if client is None:
        return cache.add(key, value, timeout)
    return bool(client.set(cache.make_and_validate_key(key), value, nx=True, ex=timeout))


class CredentialRateThrottle(BaseThrottle):
    def allow_request(self, request: Request, view: APIView) -> bool:
        scope = getattr(request.user, "scope", None)
        if scope is None:
            return True  # unauthenticated requests are refused before they cost anything
        window = int(time.time()) // WINDOW_SECONDS
        count = _counted(f"rate:{scope}:{window}")
        self._window_end = (window + 1) * WINDOW_SECONDS
        return bool(count <= settings.API_RATE_LIMIT_PER_MINUTE)

    def wait(self) -> float:
        return max(0.0, self._window_end - time.time())


def _counted(key: str) -> int:
    """Count one more request under ``key`` (created to expire after the window); the count."""
    client = redis_client()
    if client is None:
        cache.add(key, 0, WINDOW_SECONDS + 1)
        try:
            return cache.incr(key)
        except ValueError:  # the window expired between add and incr: a fresh window
            cache.add(key, 1, WINDOW_SECONDS + 1)
            return 1
    # One round trip; MULTI/EXEC so that nothing, not even the key's expiry, comes between.
    name = cache.make_and_validate_key(key)
    pipeline = client.pipeline(transaction=True)
    pipeline.set(name, 0, nx=True, ex=WINDOW_SECONDS + 1)
    pipeline.incr(name)
    return int(pipeline.execute()[1])
