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
from scheduler.settings import get_settings
from scheduler.usecases.policy import policies

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
def rules() -> dict[str, CountryRule]:
    path = Path(get_settings().sms_rules_file)
    if not path.is_absolute() and not path.exists():
        path = TEMPLATES_DIR.parent / path
    return load_rules(path)


def rule_for(phone: str) -> CountryRule:
    """The rule of an E.164 number's country. Calling codes are prefix-free, so a
    string prefix match is exact, and much cheaper than parsing the number."""
    table = policies.sms_rules()  # config/sms_rules.toml unless an admin edited them
    for code, rule in table.items():
        if code != "default" and phone.startswith("+" + code):
            return rule
    return table["default"]


def render_sms(template: str, locale: str, payload: dict[str, Any]) -> str:
    locale = locale if locale in LOCALES else DEFAULT_LOCALE
    return _env().get_template(f"{locale}/{template}.txt").render(**payload).strip()


def render_for(template: str, locale: str, payload: dict[str, Any], to_phone: str) -> str:
    """The exact text the recipient gets, signature included."""
    return apply_rule(render_sms(template, locale, payload), rule_for(to_phone))
