"""The waiting list: entries, offers when a seat frees, retention of its personal data."""
