"""JSON responses of every API endpoint, rendered once with orjson (no DRF renderer pass)."""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpResponse


def json_response(data: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(data), status=status, content_type="application/json")
