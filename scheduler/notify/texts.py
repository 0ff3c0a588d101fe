"""SMS texts: Jinja2 templates per kind and locale under templates/sms/<locale>/,
shaped by the destination country's rules (config/sms_rules.toml)."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from scheduler.domain.sms import CountryRule, apply_rule
from scheduler.kernel.i18n import DEFAULT_LOCALE, LOCALES

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


@cache
def _env() -> Environment:
    # StrictUndefined turns a missing variable into an error at enqueue time
    # instead of a blank in a sent SMS.
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR / "sms"),
        autoescape=False,  # noqa: S701 - SMS are plain text, never HTML
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        # Templates change with a deploy, not at run time: no stat() per message.
        auto_reload=False,
    )


def load_rules(path: Path) -> dict[str, CountryRule]:
    """Rules by calling code; key "default" for every other country. Fails loudly."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    rules = {"default": CountryRule(**data.get("default", {}))}
    for code, raw in data.get("country", {}).items():
        if not str(code).isdigit():
            raise ValueError(f"{path}: country keys are calling codes, got {code!r}")
        rules[str(code)] = CountryRule(**raw)
    return rules


@cache
def file_rules(sms_rules_file: str) -> dict[str, CountryRule]:
    """The rules of the settings' file (SMS_RULES_FILE), read once per process; the
    policy store falls back to them where no admin edited the country rules."""
    path = Path(sms_rules_file)
    if not path.is_absolute() and not path.exists():
        path = TEMPLATES_DIR.parent / path
    return load_rules(path)


def sms_office_name(office: dict[str, str], locale: str) -> str:
    """The office as SMS name it: English texts say "registry" themselves, and
    every character counts toward the two-segment limit to mainland numbers."""
    if locale == "en":
        return office["name_en"].removesuffix(" Marriage Registry")
    return office["name_zh"]


def render_sms(template: str, locale: str, payload: dict[str, Any]) -> str:
    locale = locale if locale in LOCALES else DEFAULT_LOCALE
    return _env().get_template(f"{locale}/{template}.txt").render(**payload).strip()


def render_for(template: str, locale: str, payload: dict[str, Any], rule: CountryRule) -> str:
    """The exact text the recipient gets under their country's ``rule``
    (``SmsTerms.rule_for(phone)``), signature included."""
    return apply_rule(render_sms(template, locale, payload), rule)
