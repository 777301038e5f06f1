"""Approval certificates (policy.md §11): signed tokens the police verify offline."""
