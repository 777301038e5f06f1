"""Where the service's CPU goes, from py-spy's raw (collapsed) stacks: a share per stage.

A sample counts for the first stage, in the order below, that any frame of its stack belongs
to; samples that only wait (epoll, locks, conditions) are left out. Registry lookups run in
tasks of their own, so they never sit under the route that started them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("registry lookups (httpx, aiohttp)", ("RegistryHttpClient.lookup",)),
    ("recording the case (one transaction)", ("record (miaopi/records/cases.py",)),
    ("rules (durable-rules)", ("evaluate (miaopi/eligibility/evaluate.py", "RuleEngine.entitled")),
    ("facts from the evidence", ("derive_facts",)),
    ("fraud-bar register", ("bars_of (",)),
    ("API key", ("authenticate (",)),
    ("idempotency key: the body's hash, the key looked up", ("find_idempotent", "_request_hash")),
    ("request body validation", ("request_body_to_args",)),
    ("other dependencies", ("solve_dependencies",)),
    ("response body", ("serialize_response", "case_body")),
    ("metrics and logs", ("observe_decision", "logging/__init__", "Logger.", "prometheus_client")),
    ("the route's own work (the case, its JSON)", ("submit (miaopi", "Decider.decide")),
    ("HTTP serving, routing, middlewares", ("uvicorn/", "h11/", "starlette/", "fastapi/")),
)
_WAITING = ("EpollSelector.select", "select (", "Condition.wait", "Lock.acquire (", "Event.wait")


def stage_shares(raw: Path) -> list[tuple[float, str]]:
    """(share of busy samples, stage), largest first; what no stage claims is "other"."""
    counts: Counter[str] = Counter()
    for line in raw.read_text(encoding="utf-8").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = stack.split(";")
        if any(w in frames[-1] for w in _WAITING):
            continue
        joined = ";".join(frames)
        stage = next((s for s, marks in STAGES if any(m in joined for m in marks)), "other")
        counts[stage] += int(n)
    total = sum(counts.values()) or 1
    return [(n / total, stage) for stage, n in counts.most_common()]


def report(raw: Path, cpu_ms: float) -> str:
    """The shares as lines, each also in ms of CPU per decision."""
    return "\n".join(
        f"  {share:6.1%}  {share * cpu_ms:5.2f} ms  {stage}" for share, stage in stage_shares(raw)
    )
