"""A couple's booking: hold, confirm, view, cancel, move, reminders, idempotent retries."""
