"""Reading a recorded decision's evidence (JSON, as cases store it) after the fact."""

from __future__ import annotations

from typing import Any

from miaopi.evidence.facts import CREDIT_EMPLOYER


def employer_region(evidence: list[dict[str, Any]]) -> str | None:
    """The employer's district, from the credit registry's answer the decision recorded: the
    district an auditor of the case must not come from."""
    for e in evidence:
        if (e.get("registry"), e.get("query")) == (CREDIT_EMPLOYER.registry, CREDIT_EMPLOYER.name):
            return (e.get("record") or {}).get("region")
    return None
