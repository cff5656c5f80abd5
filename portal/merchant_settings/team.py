"""Settings, team: who works in the portal for this merchant, in which role."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from merchants.exceptions import (
    LastOwner,
    MemberAlreadyAdded,
    MemberEmailRefused,
    MemberNotFound,
    NotAnOwner,
)
from merchants.selectors import members_of
from merchants.team import member_add, member_remove, member_role_change
from portal.access import portal_context, refused
from portal.merchant_settings.forms import ROLE_CHOICES, MemberAddForm, RoleForm
from portal.merchant_settings.invitations import invitation_send
from portal.merchant_settings.owners import owners_only_message, settings_render, settings_view


def _page(
    request: HttpRequest, form: MemberAddForm, *, status: int = 200, error: str = ""
) -> HttpResponse:
    return settings_render(
        request,
        "portal/settings/team.html",
        tab="team",
        status=status,
        members=members_of(merchant=portal_context(request).merchant),
        form=form,
        role_choices=ROLE_CHOICES,
        error=error,
    )


@settings_view
@require_http_methods(["GET", "POST"])
def team(request: HttpRequest) -> HttpResponse:
    """The members and their roles; an owner adds one by email."""
    if request.method == "GET":
        return _page(request, MemberAddForm())
    form = MemberAddForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    try:
        added = member_add(
            merchant=portal_context(request).merchant,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            by=request.user,  # type: ignore[arg-type]
        )
    except NotAnOwner:
        return refused(request, owners_only_message())
    except MemberAlreadyAdded:
        form.add_error("email", _("This person is a member already."))
        return _page(request, form, status=400)
    except MemberEmailRefused:
        form.add_error("email", _("This address cannot be added here. Ask the bank for help."))
        return _page(request, form, status=400)
    invitation_send(request, added=added)
    messages.success(request, _("Added. We sent them an email with how to sign in."))
    return redirect("portal:settings_team")


@settings_view
@require_POST
def member_role(request: HttpRequest, member_id: int) -> HttpResponse:
    """Give a member another role; the last owner keeps theirs."""
    form = RoleForm(request.POST)
    if not form.is_valid():
        return _page(
            request, MemberAddForm(), status=400, error=_("Choose one of the roles shown.")
        )
    return _member_change(request, member_id, role=form.cleaned_data["role"])


@settings_view
@require_POST
def member_delete(request: HttpRequest, member_id: int) -> HttpResponse:
    """Take a member's access to this merchant away; the last owner stays."""
    return _member_change(request, member_id, role=None)


def _member_change(request: HttpRequest, member_id: int, *, role: str | None) -> HttpResponse:
    merchant = portal_context(request).merchant
    by = request.user
    try:
        if role is None:
            member_remove(merchant=merchant, membership_id=member_id, by=by)  # type: ignore[arg-type]
            done = _("The member was removed.")
        else:
            member_role_change(merchant=merchant, membership_id=member_id, role=role, by=by)  # type: ignore[arg-type]
            done = _("The role was changed.")
    except MemberNotFound:
        raise Http404("No such member.") from None
    except NotAnOwner:
        return refused(request, owners_only_message())
    except LastOwner:
        message = _(
            "Your company needs at least one owner. Make someone else an owner first, then "
            "change this one."
        )
        return _page(request, MemberAddForm(), status=409, error=message)
    messages.success(request, done)
    return redirect("portal:settings_team")
