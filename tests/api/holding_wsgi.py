"""config.wsgi with a gate inside the work, for tests that kill a worker in the middle of a request.

An ``order.placed`` whose ref starts with ``HOLD-`` waits inside the append transaction (a
projector, the ledger's one hook) for as long as the file named by CHAINFIN_TEST_GATE exists,
after creating ``<gate>.<pid>.held`` to say which worker it is in. CHAINFIN_TEST_ROW_CLAIMS=1
claims keys with the in-flight row alone, as on SQLite: the negative control.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from config.wsgi import application
from ledger.models import Entry
from ledger.projections.registry import projector

GATE = Path(os.environ["CHAINFIN_TEST_GATE"])


@projector("order.placed")
def _hold(*, entry: Entry, data: dict[str, Any]) -> None:
    if not entry.external_ref.startswith("HOLD-") or not GATE.exists():
        return
    Path(f"{GATE}.{os.getpid()}.held").touch()
    while GATE.exists():
        time.sleep(0.02)


if os.environ.get("CHAINFIN_TEST_ROW_CLAIMS") == "1":
    from config.api import idempotency

    idempotency._run_locked = idempotency._run_claimed  # type: ignore[assignment]

__all__ = ["application"]
