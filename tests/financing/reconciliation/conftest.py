"""The officer admin's fixtures (a live trade, its line, TOTP sign-in), for the admin tests here,
and a directory of this test's own for the uploaded files (reports, statements)."""

from pathlib import Path
from typing import Any

import pytest

from tests.financing.admin.conftest import line, live, sign_in

__all__ = ["line", "live", "sign_in"]


@pytest.fixture(autouse=True)
def uploads_dir(settings: Any, tmp_path: Path) -> Path:
    settings.SETTLEMENT_REPORT_DIR = str(tmp_path / "uploads")
    return tmp_path / "uploads"
