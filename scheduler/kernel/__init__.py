"""Small shared infrastructure imported by every layer:
clock, errors, i18n, secrets, crypto, ics."""
