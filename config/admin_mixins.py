"""Admin behaviour shared by every app's officer admin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.http import HttpRequest

from ledger.money import Money


class ReadOnlyAdminMixin:
    """Rows that services write: the admin shows them and changes nothing.

    Their pages show each amount stored in minor units (a ``<name>_minor`` field) as people read
    it, "1,234.50 EUR" (``Money.display``), in the row's currency (``amount_currency``).

    List it before ``admin.ModelAdmin`` or an inline in the bases, so that its answers win.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        model: type[models.Model] = self.model  # type: ignore[attr-defined]  # the admin's
        self._amounts = [
            field for field in model._meta.concrete_fields if field.name.endswith("_minor")
        ]
        for field in self._amounts:
            setattr(self, _shown(field.name), self._amount_display(field))
        has_currency = any(field.name == "currency" for field in model._meta.concrete_fields)
        overridden = type(self).amount_currency is not ReadOnlyAdminMixin.amount_currency
        if self._amounts and not (has_currency or overridden):  # at start-up, not as a 500
            raise ImproperlyConfigured(
                f"{type(self).__name__}: {model.__name__} has amounts but no currency field;"
                " say where it is in amount_currency()."
            )

    def amount_currency(self, obj: Any) -> str:
        """The currency of ``obj``'s amounts; a model that keeps it elsewhere overrides this."""
        return str(obj.currency)

    def _amount_display(self, field: models.Field[Any, Any]) -> Callable[[Any], str]:
        @admin.display(description=str(field.verbose_name).removesuffix(" minor"))
        def shown(obj: Any) -> str:
            return Money.display(getattr(obj, field.attname), self.amount_currency(obj))

        return shown

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        """The form, with each amount's help text under its display."""
        shown = {_shown(field.name): field.help_text for field in self._amounts if field.help_text}
        kwargs["help_texts"] = shown | kwargs.get("help_texts", {})
        return super().get_form(request, obj, change, **kwargs)  # type: ignore[misc]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        """The page's fields, each amount in its place as its display (and only if the page
        shows the amount: the readonly fields, which Django appends, name every display)."""
        fields = super().get_fields(request, obj)  # type: ignore[misc]
        displays = {_shown(field.name): field.name for field in self._amounts}
        amounts = set(displays.values())
        kept = [name for name in fields if name not in displays or displays[name] in fields]
        return list(dict.fromkeys(_shown(name) if name in amounts else name for name in kept))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        fields = super().get_readonly_fields(request, obj)  # type: ignore[misc]
        return [*fields, *(_shown(field.name) for field in self._amounts)]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _shown(name: str) -> str:
    return f"{name.removesuffix('_minor')}_shown"
