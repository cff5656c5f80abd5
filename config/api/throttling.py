"""Per-credential rate limits on an atomic counter (Redis INCR in production).

DRF's own throttles read, modify and write a list in the cache, so concurrent requests can all
pass; an atomic increment cannot be fooled that way.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

WINDOW_SECONDS = 60


class CredentialRateThrottle(BaseThrottle):
    def allow_request(self, request: Request, view: APIView) -> bool:
        scope = getattr(request.user, "scope", None)
        if scope is None:
            return True  # unauthenticated requests are refused before they cost anything
        window = int(time.time()) // WINDOW_SECONDS
        key = f"rate:{scope}:{window}"
        cache.add(key, 0, WINDOW_SECONDS + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # the window expired between add and incr: a fresh window
            cache.add(key, 1, WINDOW_SECONDS + 1)
            count = 1
        self._window_end = (window + 1) * WINDOW_SECONDS
        return bool(count <= settings.API_RATE_LIMIT_PER_MINUTE)

    def wait(self) -> float:
        return max(0.0, self._window_end - time.time())
