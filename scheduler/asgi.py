"""ASGI entry point for uvicorn: ``scheduler.asgi:app``."""

from __future__ import annotations

from scheduler.app import create_app

app = create_app()
