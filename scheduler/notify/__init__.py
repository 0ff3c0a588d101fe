"""Notifications: the outbox (durable), SMS backends (transport), texts (templates)."""
