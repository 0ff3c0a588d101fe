"""Server-rendered pages (Jinja2 + HTMX) for couples."""

from __future__ import annotations

from typing import Any

PAGE_ROUTES: list[Any] = []
