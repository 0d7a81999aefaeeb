"""The help desk: FAQ answers around the clock, escalation to human operators (R-HELP-1)."""
