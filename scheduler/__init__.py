"""Appointment service for marriage registry offices."""

from __future__ import annotations

import os

# Piccolo finds its engine and apps through this module path; set it before any
# table is imported so every entry point (server, worker, tests, piccolo CLI) agrees.
os.environ.setdefault("PICCOLO_CONF", "scheduler.db.piccolo_conf")
