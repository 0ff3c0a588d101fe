"""The lottery for hot dates: applications, the draw, and the retention of its personal data."""
