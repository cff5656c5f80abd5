"""config.wsgi, as a gunicorn worker imports it, hands everything it loaded to gc.freeze()."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT
from tests.deploy.conftest import production_env

_PROBE = """
import gc, json, sys
import config.wsgi
print(json.dumps({
    "frozen": gc.get_freeze_count(),
    "views_loaded": "ledger.api.views" in sys.modules,
    "tracked": len(gc.get_objects()),
}))
"""


def test_the_loaded_application_is_frozen_views_included() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=REPO_ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    # The views come with the URLconf, imported before the freeze rather than by the first
    # request; what the collector still walks is what was made after it, next to nothing.
    assert probe["views_loaded"]
    assert probe["frozen"] > 50_000
    assert probe["tracked"] < probe["frozen"] // 100
