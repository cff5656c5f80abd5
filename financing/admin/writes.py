"""What the financing admins that write share: the officer acting, and a refusal that stays put.

No financing admin form saves a row itself. Every change goes through ``financing.services``
with the signed-in officer, and the service checks the officer's permission again: a button is
shown only to those who may press it, but a refusal from the service is what stops everyone
else, and it is shown as an admin message, never as an error page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from financing.admin.formatting import refusal
from financing.exceptions import FinancingError

_M = TypeVar("_M", bound=Model)
_REFUSED = "_financing_admin_refused"
_PROPOSED = "_financing_admin_proposed"
PROPOSED = "Proposed: it takes effect when a different senior officer confirms it."


def officer_of(request: HttpRequest) -> User:
    """The signed-in officer, whom every service call names."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied
    return user


def object_seen(model_admin: admin.ModelAdmin[_M], request: HttpRequest, object_id: str) -> _M:
    """The row an officer page is about: 404 when there is none, 403 when the officer may not
    see it (a page of its own is no way around the admin's view permission)."""
    obj = model_admin.get_object(request, unquote(object_id))
    if obj is None:
        raise Http404(f"No {model_admin.opts.verbose_name} {object_id}.")
    if not model_admin.has_view_permission(request, obj):
        raise PermissionDenied
    return obj


def proposal_posted(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    form: forms.Form,
    propose: Callable[[], object],
) -> HttpResponse | None:
    """For a valid POST, record a four-eyes proposal by one service call: the officer lands on
    the pending changes. None when the page is to be shown (again): a GET, an invalid form, or
    the service's refusal, which the form now carries."""
    if request.method != "POST" or not form.is_valid():
        return None
    try:
        propose()
    except FinancingError as exc:
        form.add_error(None, refusal(exc))
        return None
    model_admin.message_user(request, PROPOSED, messages.SUCCESS)
    return HttpResponseRedirect(reverse("admin:financing_riskchange_changelist"))


class ServiceSaveAdmin(admin.ModelAdmin[_M]):
    """An add/change form whose ``save_model`` hands the cleaned data to a service.

    When the service refuses, the officer reads its sentence back on the form, and the admin
    neither logs nor announces a save that did not happen.
    """

    def save_through(self, request: HttpRequest, obj: _M, write: Callable[[], _M]) -> bool:
        """Save by one service call; ``obj`` becomes the saved row. False when it refused."""
        try:
            saved = write()
        except FinancingError as exc:
            setattr(request, _REFUSED, True)
            self.message_user(request, refusal(exc), messages.ERROR)
            return False
        obj.pk = saved.pk
        obj.refresh_from_db()
        return True

    def propose_through(self, request: HttpRequest, propose: Callable[[], Any]) -> None:
        """Record a four-eyes proposal instead of saving: the row stays as it is until a
        different senior officer confirms, and the officer lands on the pending changes."""
        try:
            propose()
        except FinancingError as exc:
            setattr(request, _REFUSED, True)
            self.message_user(request, refusal(exc), messages.ERROR)
            return
        setattr(request, _PROPOSED, True)
        self.message_user(request, PROPOSED, messages.SUCCESS)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # nothing related is edited here; what goes with the row is the service's

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if not _unsaved(request):
            return super().log_addition(request, obj, message)
        return None

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if not _unsaved(request):
            return super().log_change(request, obj, message)
        return None

    def response_add(
        self, request: HttpRequest, obj: _M, post_url_continue: str | None = None
    ) -> HttpResponse:
        if getattr(request, _REFUSED, False):
            return HttpResponseRedirect(request.get_full_path())
        if getattr(request, _PROPOSED, False):
            return HttpResponseRedirect(reverse("admin:financing_riskchange_changelist"))
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request: HttpRequest, obj: _M) -> HttpResponse:
        if getattr(request, _REFUSED, False):
            return HttpResponseRedirect(request.get_full_path())
        if getattr(request, _PROPOSED, False):
            return HttpResponseRedirect(reverse("admin:financing_riskchange_changelist"))
        return super().response_change(request, obj)


def _unsaved(request: HttpRequest) -> bool:
    return getattr(request, _REFUSED, False) or getattr(request, _PROPOSED, False)
