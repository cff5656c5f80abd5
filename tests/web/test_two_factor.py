"""Officers sign in with a password and a TOTP code; a password alone opens no admin view.

The admin's URLs are enumerated from the live URLconf, so models, apps and custom views added
later are covered without touching this file.
"""

from __future__ import annotations

import re
import time
from base64 import b32decode, b32encode
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.sites import AdminSite
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, path, resolve, reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.admin import OTPAdminSite
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from config.admin_site import OfficerAdminSite
from ledger.management.commands.seed_demo import DEMO_PASSWORD, OFFICERS, demo_totp_key
from ledger.services import entry_append
from merchants.management.commands.totp_code import Command as TotpCode
from merchants.models import Merchant
from merchants.services import marketplace_create
from tests.conftest import STAFF_PASSWORD, order_placed, totp_token

# --- the admin's URLs, from the URLconf that serves them --------------------------------------

_PARAM = re.compile(r"<(?:\w+:)?(?P<route>\w+)>|\(\?P<(?P<regex>\w+)>[^)]*\)")


def _admin_root() -> URLResolver:
    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLResolver) and pattern.namespace == admin.site.name:
            return pattern
    raise AssertionError("the admin site is not in the URLconf")


def _endpoints(resolver: URLResolver, prefix: str) -> Iterator[tuple[str, URLPattern]]:
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern).removeprefix("^").removesuffix("$")
        if isinstance(pattern, URLResolver):
            yield from _endpoints(pattern, route)
        else:
            yield route, pattern


def _model_of(route: str, prefix: str) -> type[Model] | None:
    app_label, _, rest = route.removeprefix(prefix).partition("/")
    try:
        return apps.get_model(app_label, rest.partition("/")[0])
    except (LookupError, ValueError):
        return None


def _sample_pk(model: type[Model] | None) -> str:
    """An existing object's pk where there is one: the view must refuse before it looks."""
    obj = model._default_manager.order_by("pk").first() if model is not None else None
    return quote(str(obj.pk)) if obj is not None else "1"


def _admin_urls() -> list[tuple[str, URLPattern]]:
    """Every URL the admin serves but its login page, each with the pattern it resolves to.

    Index, password change, autocomplete, jsi18n, view-on-site, every app index, every
    registered model's changelist/add/change/history/delete and whatever each ModelAdmin's
    get_urls adds, and the catch-all.
    """
    root = _admin_root()
    prefix = "/" + str(root.pattern)
    labels = sorted({model._meta.app_label for model in admin.site._registry})
    content_type = str(ContentType.objects.get_for_model(Merchant).pk)

    def expand(template: str, model: type[Model] | None) -> list[str]:
        match = _PARAM.search(template)
        if match is None:
            return [template]
        name = match["route"] or match["regex"]
        values = {
            "app_label": labels,
            "url": ["no-such-page/"],
            "content_type_id": [content_type],
        }.get(name, [_sample_pk(model)])
        head, tail = template[: match.start()], template[match.end() :]
        return [url for value in values for url in expand(head + value + tail, model)]

    urls = []
    for route, pattern in _endpoints(root, prefix):
        if pattern.name == "login":
            continue
        for url in expand(route, _model_of(route, prefix)):
            # Proves the enumeration: this URL reaches this pattern's view, not another's.
            assert resolve(url).func is pattern.callback, (url, pattern)
            urls.append((url, pattern))
    return urls


@pytest.fixture
def admin_objects(merchant, marketplace, now) -> None:
    """Something behind the changelists: a merchant, its chain, an entry, an order."""
    entry_append(source=marketplace.code, merchant_id=merchant.pk, event=order_placed(), now=now)


def _verify_session(client: Client, device: TOTPDevice) -> None:
    """What django_otp.login does once the code is right: the device goes in the session."""
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


# --- the site ----------------------------------------------------------------------------------


def test_every_registration_lands_on_the_two_factor_site() -> None:
    assert isinstance(admin.site, OfficerAdminSite)
    assert isinstance(admin.site, OTPAdminSite)
    assert admin.site.name == "admin"
    assert admin.site._registry, "no models registered"
    sites = {model_admin.admin_site for model_admin in admin.site._registry.values()}
    assert len(sites) == 1
    assert isinstance(sites.pop(), OfficerAdminSite)
    assert TOTPDevice in admin.site._registry  # django-otp's own admin landed here too


@pytest.mark.django_db
def test_a_password_alone_opens_no_admin_view(admin_objects, make_staff_user) -> None:
    urls = _admin_urls()
    names = {pattern.name for _, pattern in urls}
    for model in admin.site._registry:
        assert f"{model._meta.app_label}_{model._meta.model_name}_changelist" in names
    # Custom views that apps add through ModelAdmin.get_urls are in the list.
    assert {"ledger_ledgerverification_verify", "otp_totp_totpdevice_config"} <= names
    client = Client()
    client.force_login(make_staff_user(superuser=True))  # what a right password gives
    login = reverse("admin:login")
    counts = {model: model._default_manager.count() for model in admin.site._registry}

    leaks = []
    for url, _ in urls:
        # POST as a delete confirmation would: nothing may be done, not only nothing shown.
        for response in (client.get(url), client.post(url, {"post": "yes"})):
            location = response.get("Location", "")
            if response.status_code != 302 or not location.startswith(f"{login}?next="):
                method = response.request["REQUEST_METHOD"]
                leaks.append(f"{method} {url} -> {response.status_code} {location}")
    assert leaks == [], "\n".join(leaks)
    assert counts == {model: model._default_manager.count() for model in admin.site._registry}


@pytest.mark.django_db
def test_the_same_officer_with_a_verified_device_reaches_the_admin(
    admin_objects, make_staff_user, officer_client_factory
) -> None:
    client = officer_client_factory(make_staff_user(superuser=True))
    pages = [reverse("admin:index")]
    pages += [
        reverse("admin:app_list", args=[label])
        for label in sorted({model._meta.app_label for model in admin.site._registry})
    ]
    for model in admin.site._registry:
        info = f"{model._meta.app_label}_{model._meta.model_name}"
        pages.append(reverse(f"admin:{info}_changelist"))
        obj = model._default_manager.order_by("pk").first()
        if obj is not None:
            pages.append(reverse(f"admin:{info}_change", args=[quote(str(obj.pk))]))

    failures = [(page, status) for page in pages if (status := client.get(page).status_code) != 200]
    assert failures == []


@pytest.mark.django_db
def test_without_the_device_check_a_password_would_open_the_admin(
    monkeypatch, make_staff_user
) -> None:
    """Negative control: the redirects above come from the two-factor check, nothing else."""
    client = Client()
    client.force_login(make_staff_user(superuser=True))
    assert client.get(reverse("admin:index")).status_code == 302
    monkeypatch.setattr(OfficerAdminSite, "has_permission", AdminSite.has_permission)
    assert client.get(reverse("admin:index")).status_code == 200


# A ModelAdmin whose custom view forgot `admin_site.admin_view`, on a plain and an officer site.
class _UnwrappedViewAdmin(admin.ModelAdmin):
    def get_urls(self) -> list[URLPattern | URLResolver]:
        return [path("export/", self.export, name="auth_group_export"), *super().get_urls()]

    def export(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("every group, exported")


_officer_site = OfficerAdminSite(name="officers")
_plain_site = AdminSite(name="plain")
for _site in (_officer_site, _plain_site):
    _site.register(Group, _UnwrappedViewAdmin)
urlpatterns = [path("officers/", _officer_site.urls), path("plain/", _plain_site.urls)]


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_a_custom_view_without_admin_view_is_guarded_all_the_same(client, make_staff_user) -> None:
    user = make_staff_user(superuser=True)
    client.force_login(user)
    assert client.get("/plain/auth/group/export/").status_code == 200  # open on a plain site

    response = client.get("/officers/auth/group/export/")
    assert response.status_code == 302
    assert response["Location"].startswith("/officers/login/?next=")

    _verify_session(client, TOTPDevice.objects.create(user=user, name="phone", confirmed=True))
    assert client.get("/officers/auth/group/export/").status_code == 200


# --- the login form ------------------------------------------------------------------------------


@pytest.fixture
def officer(make_staff_user) -> tuple[User, TOTPDevice]:
    user = make_staff_user(groups=["officer"])
    return user, TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def _sign_in(client: Client, user: User, **fields: str) -> HttpResponse:
    data = {"username": user.username, "password": STAFF_PASSWORD, "next": reverse("admin:index")}
    return client.post(reverse("admin:login"), data | fields)


def _signed_in(client: Client) -> bool:
    return client.get(reverse("admin:index")).status_code == 200


def _wrong_code(device: TOTPDevice) -> str:
    """A code the device does not accept now (not its code for the steps around now)."""
    now = time.time()
    accepted = set()
    for offset in range(-2, 3):
        generator = TOTP(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
        generator.time = now + offset * device.step
        accepted.add(f"{generator.token():06d}")
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in accepted)


def test_the_login_page_asks_for_the_code(client, db) -> None:
    response = client.get(reverse("admin:login"))
    assert response.status_code == 200
    assert b'name="otp_token"' in response.content


@pytest.mark.django_db
def test_the_login_form_refuses_a_wrong_code(client, officer) -> None:
    user, device = officer
    response = _sign_in(
        client, user, otp_device=device.persistent_id, otp_token=_wrong_code(device)
    )
    assert response.status_code == 200
    assert "Invalid token" in str(response.context["form"].errors)
    assert "_auth_user_id" not in client.session
    assert not _signed_in(client)


@pytest.mark.django_db
def test_the_login_form_refuses_a_missing_code(client, officer) -> None:
    user, device = officer
    response = _sign_in(client, user, otp_device=device.persistent_id)
    assert response.status_code == 200
    assert "Please enter your OTP token" in str(response.context["form"].errors)
    assert "_auth_user_id" not in client.session
    assert not _signed_in(client)


@pytest.mark.django_db
def test_password_and_code_sign_in_in_one_step_and_a_code_works_once(client, officer) -> None:
    user, device = officer
    code = totp_token(device)
    response = _sign_in(client, user, otp_token=code)  # one device: nothing to choose
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
    assert _signed_in(client)

    replay = _sign_in(Client(), user, otp_token=code)
    assert replay.status_code == 200
    assert "Invalid token" in str(replay.context["form"].errors)


@pytest.mark.django_db
def test_with_two_devices_the_officer_picks_one(client, officer) -> None:
    user, device = officer
    TOTPDevice.objects.create(user=user, name="spare phone", confirmed=True)
    response = _sign_in(client, user, otp_token=totp_token(device))
    assert "Please select a device" in str(response.context["form"].errors)
    assert not _signed_in(client)


# --- the commands --------------------------------------------------------------------------------


def test_totp_code_refuses_when_debug_is_off(settings, capsys) -> None:
    settings.DEBUG = False
    with pytest.raises(SystemExit) as exited:
        TotpCode().run_from_argv(["manage.py", "totp_code", "admin"])
    assert exited.value.code == 1
    assert "only runs with DEBUG on" in capsys.readouterr().err


@pytest.mark.django_db
def test_totp_code_prints_a_code_the_device_accepts_in_the_demo(settings, officer) -> None:
    settings.DEBUG = True
    user, device = officer
    out = StringIO()
    call_command("totp_code", user.username, stdout=out, stderr=StringIO())
    code = out.getvalue().strip()
    assert re.fullmatch(r"\d{6}", code)
    assert device.verify_token(code)


def _enroll(*args: str) -> str:
    out = StringIO()
    call_command("totp_enroll", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_totp_enroll_prints_a_secret_that_signs_in(client, make_staff_user) -> None:
    user = make_staff_user("officer-7")
    output = _enroll("officer-7")

    secret = re.search(r"^secret:\s+([A-Z2-7]+=*)$", output, re.MULTILINE)[1]
    uri = re.search(r"^otpauth URI: (\S+)$", output, re.MULTILINE)[1]
    assert uri.startswith("otpauth://totp/Chainfin%3Aofficer-7?")
    assert f"secret={secret}" in uri
    assert "issuer=Chainfin" in uri
    code = f"{TOTP(b32decode(secret)).token():06d}"  # what the authenticator app shows
    assert _sign_in(client, user, otp_token=code).status_code == 302
    assert _signed_in(client)


@pytest.mark.django_db
def test_totp_enroll_replaces_a_device_only_with_reset(make_staff_user) -> None:
    user = make_staff_user("officer-8")
    _enroll("officer-8")
    first = TOTPDevice.objects.get(user=user)
    with pytest.raises(CommandError, match="--reset"):
        _enroll("officer-8")

    _enroll("officer-8", "--reset")

    replaced = TOTPDevice.objects.get(user=user)
    assert replaced.pk != first.pk
    assert replaced.key != first.key
    assert replaced.confirmed


@pytest.mark.django_db
def test_totp_enroll_is_for_staff_only(django_user_model) -> None:
    django_user_model.objects.create_user("merchant-9", password="pw")
    with pytest.raises(CommandError, match="not staff"):
        _enroll("merchant-9")
    with pytest.raises(CommandError, match="No user"):
        _enroll("nobody")
    assert not TOTPDevice.objects.exists()


# --- the demo ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_seed_demo_gives_each_officer_a_demo_device_once(client) -> None:
    # With the demo evidence counted as loaded, seed_demo only sees to the logins: fast.
    marketplace_create(code="acme", name="Acme Marketplace")
    first = StringIO()
    call_command("seed_demo", stdout=first)
    call_command("seed_demo", stdout=StringIO())

    for spec in OFFICERS:
        user = User.objects.get(username=spec.username)
        assert user.is_staff
        assert user.is_superuser == (spec.group == "")
        assert user.check_password(DEMO_PASSWORD)
        assert list(user.groups.values_list("name", flat=True)) == [spec.group] * bool(spec.group)
        device = TOTPDevice.objects.get(user=user)  # one, after two runs
        assert device.confirmed
        assert device.key == demo_totp_key(spec.username)
        secret = b32encode(device.bin_key).decode()
        assert secret.startswith(f"CHAINFINDEMOONLY{spec.username.upper()}")
        assert secret in first.getvalue()
    assert {"officer", "senior officer", "auditor"} <= set(
        Group.objects.values_list("name", flat=True)
    )

    officer = User.objects.get(username="officer")
    code = f"{TOTP(bytes.fromhex(demo_totp_key('officer'))).token():06d}"
    response = client.post(
        reverse("admin:login"),
        {"username": "officer", "password": DEMO_PASSWORD, "otp_token": code},
    )
    assert response.status_code == 302, response.context["form"].errors
    assert client.session["_auth_user_id"] == str(officer.pk)


def test_make_demo_prints_the_admins_demo_secret_and_how_to_get_a_code() -> None:
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert b32encode(bytes.fromhex(demo_totp_key("admin"))).decode() in makefile
    assert "totp_code admin" in makefile
