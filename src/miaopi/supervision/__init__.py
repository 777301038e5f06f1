"""Post-hoc supervision (policy.md §8): spot-check draws, audit tasks, revocation, re-checks."""
