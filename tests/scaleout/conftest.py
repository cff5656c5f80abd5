"""The financing fixtures (trade evidence, facilities, officers), shared with tests/financing."""

from tests.financing.conftest import (  # noqa: F401  (fixtures, found by pytest by name)
    facility,
    officer,
    open_facility,
    senior,
    trade,
    trade_for,
    verified_merchant,
)
