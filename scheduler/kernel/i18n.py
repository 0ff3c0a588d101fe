"""Translations: flat JSON catalogs under scheduler/locales/<locale>/*.json
(one file per area: errors.json, pages.json, ...), merged per locale.

zh-Hans is the source language. A key missing from a catalog is a bug caught by
tests/test_i18n.py; at run time it falls back to zh-Hans, then to the key itself,
so a missing translation never turns into a 500.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

LOCALES = ("zh-Hans", "zh-Hant", "en")
DEFAULT_LOCALE = "zh-Hans"
_DIR = Path(__file__).parents[1] / "locales"


@cache
def catalog(locale: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in sorted((_DIR / locale).glob("*.json")):
        merged.update(json.loads(path.read_text(encoding="utf-8")))
    return merged


def translate(locale: str, key: str, **params: Any) -> str:
    text = catalog(locale if locale in LOCALES else DEFAULT_LOCALE).get(key)
    if text is None:
        text = catalog(DEFAULT_LOCALE).get(key, key)
    return text.format_map(params) if params else text


def match_locale(tag: str | None) -> str | None:
    """Map one BCP 47 tag to a supported locale (zh-TW, zh-HK, zh-MO -> zh-Hant)."""
    if not tag:
        return None
    lowered = tag.strip().lower().replace("_", "-")
    if lowered.startswith("en"):
        return "en"
    if lowered.startswith("zh"):
        if any(part in lowered for part in ("hant", "-tw", "-hk", "-mo")):
            return "zh-Hant"
        return "zh-Hans"
    return None


def negotiate(accept_language: str | None, default: str = DEFAULT_LOCALE) -> str:
    """Pick the best locale from an Accept-Language header (q-values honoured)."""
    if not accept_language:
        return default
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")):
        tag, _, params = part.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        locale = match_locale(tag)
        if locale and quality > 0:
            weighted.append((-quality, index, locale))
    return min(weighted)[2] if weighted else default
