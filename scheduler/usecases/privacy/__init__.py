"""Personal data sealed at rest, masked in views, and erased after the retention period."""
