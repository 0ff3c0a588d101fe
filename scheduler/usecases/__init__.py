"""Use cases, grouped by the domain a registry clerk would recognise; see docs/architecture.md."""
