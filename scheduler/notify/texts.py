"""SMS texts: Jinja2 templates per kind and locale under templates/sms/<locale>/."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from scheduler.i18n import DEFAULT_LOCALE, LOCALES

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


@cache
def _env() -> Environment:
    # Plain text, not HTML: no autoescape. StrictUndefined turns a missing
    # variable into an error at enqueue time instead of a blank in a sent SMS.
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR / "sms"),
        autoescape=False,  # noqa: S701 - SMS are plain text, never HTML
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )


def render_sms(template: str, locale: str, payload: dict[str, Any]) -> str:
    locale = locale if locale in LOCALES else DEFAULT_LOCALE
    return _env().get_template(f"{locale}/{template}.txt").render(**payload).strip()
