"""Whether a referral is owed only to registries that did not answer (policy.md §9).

Such a case is decided again, asking only those registries: an outage must not cost an
applicant a trip to the counter. A criterion that failed in refer mode, or one that is unknown
for any other reason (a registry that answered "no record", a claim not made), is for an
officer: no later answer of a registry changes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

FAULTS = frozenset({"unavailable", "invalid"})


def to_ask_again(
    criteria: Iterable[dict[str, Any]], evidence: Iterable[dict[str, Any]]
) -> list[tuple[str, str]] | None:
    """The (registry, query) pairs to ask again, if every reason the case was referred is a
    registry that did not answer; None if a second try could not change the referral."""
    by_registry: dict[str, list[str]] = {}
    for e in evidence:
        by_registry.setdefault(e["registry"], []).append(e["status"])
    unknown = []
    for c in criteria:
        if c["result"] == "fail" and c["on_fail"] == "refer":
            return None
        if c["result"] == "unknown":
            unknown.append(c)
    if not unknown:
        return None
    for c in unknown:
        statuses = [s for r in c["registries"] for s in by_registry.get(r, ())]
        if "no_record" in statuses or not FAULTS.intersection(statuses):
            return None
    return [(e["registry"], e["query"]) for e in evidence if e["status"] in FAULTS]
