"""Pure domain rules: no I/O, no database, no clock reads (``now`` is passed in)."""

from __future__ import annotations
