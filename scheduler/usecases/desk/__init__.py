"""The clerk's desk: the day list, pre-check, check-in, the on-site queue, no-shows."""
