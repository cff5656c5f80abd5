"""The email a new member gets: a link to choose a password (Django's password-reset token,
valid for PASSWORD_RESET_TIMEOUT), or, for someone who signs in already, a note of the access."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from merchants.team import MemberAdded


def invitation_send(request: HttpRequest, *, added: MemberAdded) -> None:
    """Email the new member of ``added`` how to get in, in the inviter's language."""
    user = added.membership.user
    if added.user_created:
        path = reverse(
            "portal:password_reset_confirm",
            args=[
                urlsafe_base64_encode(force_bytes(user.pk)),
                default_token_generator.make_token(user),
            ],
        )
    else:
        path = reverse("portal:login")
    context = {
        "merchant": added.membership.merchant.legal_name,
        "username": user.get_username(),
        "link": request.build_absolute_uri(path),
        "new": added.user_created,
    }
    subject = render_to_string("portal/settings/invitation_subject.txt", context).strip()
    body = render_to_string("portal/settings/invitation_email.txt", context)
    send_mail(subject, body, settings.PORTAL_FROM_EMAIL, [user.email])
