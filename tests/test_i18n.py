"""Translations: complete catalogs, language negotiation, every SMS text renders."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.errors import STATUSES
from scheduler.i18n import LOCALES, catalog, negotiate, translate
from scheduler.notify.texts import TEMPLATES_DIR, render_sms


def test_every_locale_has_the_same_keys() -> None:
    reference = set(catalog("zh-Hans"))
    for locale in LOCALES:
        assert set(catalog(locale)) == reference, locale


def test_every_error_slug_has_a_message() -> None:
    for slug in STATUSES:
        for locale in LOCALES:
            assert f"error.{slug}" in catalog(locale), (slug, locale)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "zh-Hans"),
        ("en-US,en;q=0.9", "en"),
        ("zh-TW", "zh-Hant"),
        ("zh-HK;q=0.8, en;q=0.9", "en"),
        ("zh-Hant-HK", "zh-Hant"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-Hans"),
        ("fr-FR", "zh-Hans"),
        ("en;q=0", "zh-Hans"),
    ],
)
def test_negotiate(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected


def test_translate_formats_and_falls_back() -> None:
    assert "62" in translate("en", "error.invalid-input.range-too-long", days=62)
    assert translate("xx", "error.slot-full") == translate("zh-Hans", "error.slot-full")
    assert translate("en", "no.such.key") == "no.such.key"


SAMPLE = {
    "code": "123456",
    "reference": "GZTH-7K4Q-9M2X",
    "minutes": 15,
    "office": "广州市天河区婚姻登记处",
    "date": "2027-02-14",
    "start": "09:30",
}


def _templates() -> set[str]:
    return {p.stem for p in (TEMPLATES_DIR / "sms" / "zh-Hans").glob("*.txt")}


def test_every_sms_template_exists_in_every_locale() -> None:
    for locale in LOCALES:
        assert {p.stem for p in Path(TEMPLATES_DIR / "sms" / locale).glob("*.txt")} == _templates()


@pytest.mark.parametrize("locale", LOCALES)
def test_every_sms_renders_without_urls_within_two_segments(locale: str) -> None:
    for template in _templates():
        text = render_sms(template, locale, SAMPLE)
        assert "{{" not in text and "http" not in text
        # UCS-2 SMS: 70 characters in one segment, 67 per segment when concatenated.
        limit = 134 if any(ord(ch) > 127 for ch in text) else 306
        assert len(text) <= limit, (template, locale, len(text))
