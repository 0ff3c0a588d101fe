"""Notifications: the outbox (durable), SMS backends (transport), texts (templates),
delivery callbacks, live boards. Told what to send and under which terms (terms.py);
it imports no use case."""
