"""Telling the submitter (policy.md §10): webhook delivery, out of the decision's path."""
