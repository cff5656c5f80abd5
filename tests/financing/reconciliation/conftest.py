"""The officer admin's fixtures (a live trade, its line, TOTP sign-in), for the admin tests here."""

from tests.financing.admin.conftest import line, live, sign_in

__all__ = ["line", "live", "sign_in"]
