"""ASGI entry point for uvicorn: ``scheduler.asgi:app``."""

from __future__ import annotations

from scheduler.app import create_app
from scheduler.observability.logs import configure_logging
from scheduler.settings import get_settings

# uvicorn's worker processes import this module, not __main__: configure here too.
configure_logging(get_settings().log_level, get_settings().log_format)
app = create_app()
