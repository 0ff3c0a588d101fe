"""Offices and their capacity, blackouts, suspensions, holiday notices and reschedule runs."""
