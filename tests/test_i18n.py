"""Translations: complete catalogs, language negotiation, every SMS text renders."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.domain.sms import CountryRule, count_segments, violations
from scheduler.domain.sms import rule_for as country_rule
from scheduler.kernel.errors import STATUSES
from scheduler.kernel.i18n import LOCALES, catalog, negotiate, translate
from scheduler.notify.texts import TEMPLATES_DIR, file_rules, render_for
from scheduler.settings import get_settings


def rule_for(phone: str) -> CountryRule:
    """The country rule of the shipped config/sms_rules.toml (no policy override)."""
    return country_rule(phone, file_rules(get_settings().sms_rules_file))


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
    "label": "M012",
    "old": "02-02 09:30",
    "new": "02-03 09:30",
    "reason": "疫情防控",
    "counter": "12",
    "deadline": "02-09 09:00",
    # The longest checklist of the shipped rule set (tests/test_rules.py renders them all).
    "bring": "回乡证或居住证、港澳身份证、公证的无配偶声明、2寸合照3张",
}
SERVICES = ("marriage", "divorce", "ceremony")
# Mainland China, Hong Kong and a country on the default rule.
PHONES = ("+8613800138000", "+85291234567", "+14155550100")


def _templates() -> set[str]:
    return {p.stem for p in (TEMPLATES_DIR / "sms" / "zh-Hans").glob("*.txt")}


def test_every_sms_template_exists_in_every_locale() -> None:
    for locale in LOCALES:
        assert {p.stem for p in Path(TEMPLATES_DIR / "sms" / locale).glob("*.txt")} == _templates()


@pytest.mark.parametrize("locale", LOCALES)
def test_every_sms_obeys_the_destination_rules(locale: str) -> None:
    """Every template, every locale, every service, to each country: signed where
    required, no links where banned, within the segment limit."""
    for template in _templates():
        for service in SERVICES:
            for phone in PHONES:
                office = "Guangzhou Tianhe District" if locale == "en" else SAMPLE["office"]
                reason = "Epidemic control" if locale == "en" else SAMPLE["reason"]
                payload = SAMPLE | {"service": service, "office": office, "reason": reason}
                text = render_for(template, locale, payload, rule_for(phone))
                rule = rule_for(phone)
                assert "{{" not in text and "{%" not in text
                assert text.startswith(rule.signature)
                assert violations(text, rule) == [], (template, locale, phone, count_segments(text))


def test_mainland_texts_carry_the_signature_once() -> None:
    text = render_for("code", "zh-Hans", SAMPLE, rule_for("+8613800138000"))
    assert text.startswith("【婚姻登记】") and text.count("【婚姻登记】") == 1
    assert not render_for("code", "en", SAMPLE, rule_for("+14155550100")).startswith("【")
