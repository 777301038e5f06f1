"""Post-hoc supervision of approvals (policy.md §8)."""
