"""Every portal string is translated to Chinese, the catalogue is current and compiled."""

from __future__ import annotations

import gettext
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, REQUIRE_SERVICES

CATALOGUE = REPO_ROOT / "portal" / "locale" / "zh_Hans" / "LC_MESSAGES"
_ENTRY = re.compile(
    r'^(?P<flags>#,.*\n)?msgid "(?P<id>.*)"\n(?:msgid_plural ".*"\n)?'
    r'(?P<strs>(?:msgstr(?:\[\d\])? ".*"\n?)+)',
    re.M,
)


def _entries(po: str) -> dict[str, tuple[str, list[str]]]:
    found = {}
    for m in _ENTRY.finditer(po):
        strs = re.findall(r'msgstr(?:\[\d\])? "(.*)"', m.group("strs"))
        found[m.group("id")] = (m.group("flags") or "", strs)
    found.pop("", None)  # the header
    return found


def test_every_string_has_a_chinese_translation() -> None:
    entries = _entries((CATALOGUE / "django.po").read_text(encoding="utf-8"))
    assert len(entries) > 150
    untranslated = [i for i, (_, strs) in entries.items() if not all(strs)]
    fuzzy = [i for i, (flags, _) in entries.items() if "fuzzy" in flags]
    assert not untranslated, f"translate these in django.po: {untranslated}"
    assert not fuzzy, f"check these fuzzy translations: {fuzzy}"


def test_the_compiled_catalogue_matches_the_po_file() -> None:
    with (CATALOGUE / "django.mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    for msgid, (_, strs) in _entries((CATALOGUE / "django.po").read_text("utf-8")).items():
        text = msgid.replace('\\"', '"')
        assert compiled.gettext(text) == strs[0].replace('\\"', '"'), (
            f"django.mo is stale for {msgid!r}: run compilemessages"
        )


def test_makemessages_finds_nothing_new(tmp_path: Path) -> None:
    if shutil.which("xgettext") is None:
        message = "xgettext is missing (apt-get install gettext): makemessages cannot run"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip("!! " + message)
    copy = tmp_path / "portal"
    shutil.copytree(REPO_ROOT / "portal", copy, ignore=shutil.ignore_patterns("__pycache__"))
    environment = os.environ | {
        "PYTHONPATH": str(REPO_ROOT),
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "django",
            "makemessages",
            "-l",
            "zh_Hans",
            "--no-wrap",
            "--no-location",
        ],
        cwd=copy,
        env=environment,
        check=True,
        capture_output=True,
    )
    fresh = _entries((copy / "locale/zh_Hans/LC_MESSAGES/django.po").read_text("utf-8"))
    committed = _entries((CATALOGUE / "django.po").read_text("utf-8"))
    assert set(fresh) == set(committed), (
        f"new: {set(fresh) - set(committed)}; gone: {set(committed) - set(fresh)}"
    )
    untranslated = [i for i, (_, strs) in fresh.items() if not all(strs)]
    assert not untranslated


# Words a template may show as they are in every language.
UNTRANSLATED_OK = {"Chainfin", "otpauth"}
_MARKED = re.compile(
    r"{%\s*blocktranslate.*?{%\s*endblocktranslate\s*%}|{%.*?%}|{{.*?}}|{#.*?#}"
    r"|<script.*?</script>|<style.*?</style>|<[^>]*>|&\w+;",
    re.S,
)


def test_templates_show_no_text_outside_translation_tags() -> None:
    """Text a person reads is marked for translation: strip what is marked (and tags, variables,
    scripts), and no word may be left."""
    templates = sorted((REPO_ROOT / "portal" / "templates").rglob("*.html"))
    assert len(templates) > 10
    left = {}
    for template in templates:
        words = set(re.findall(r"[A-Za-z]{2,}", _MARKED.sub(" ", template.read_text()))) - (
            UNTRANSLATED_OK
        )
        if words:
            left[template.name] = sorted(words)
    assert left == {}, f"mark these for translation: {left}"
