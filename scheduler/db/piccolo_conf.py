"""Piccolo's configuration module (PICCOLO_CONF points here)."""

from __future__ import annotations

from piccolo.conf.apps import AppRegistry

from scheduler.db.engine import engine_for
from scheduler.settings import get_settings

_settings = get_settings()
DB = engine_for(_settings.database_url, _settings.database_replica_url)

APP_REGISTRY = AppRegistry(apps=["scheduler.db.piccolo_app"])
