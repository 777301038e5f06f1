"""Decide: combine criterion results into the case outcome (policy.md §4)."""
