"""Gather evidence: ask the registries, turn their answers into named facts."""
