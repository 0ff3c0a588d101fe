"""The read side of "is this date open, and why": slots, holidays, lottery days."""
