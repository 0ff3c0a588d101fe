"""Staff accounts, sign-in, sessions, office scoping, and reading the audit log."""
