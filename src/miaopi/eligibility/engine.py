"""durable-rules behind one small door. No other module imports ``durable``.

How the engine is used, and why (each point was learned from a failure):

* One fact per evaluation, asserted with ``assert_fact`` (a posted event is consumed by the
  first rule that matches it), in a fresh session that is deleted in ``finally`` (a ruleset
  holds at most 1,024 live sessions).
* Every rule starts with a type guard on ``t`` and a catch-all rule matches every application
  fact: an unmatched fact raises.
* A rule can only *pass* a criterion by a positive match, guarded with ``$ex`` on every field
  it reads, so missing evidence can never look like a pass.
* Each ruleset compiles three times: one rule that every criterion passes (asked first: each
  rule that fires costs a round trip through Python, and most applications pass everything),
  one rule per branch (run when that rule did not fire, to find which criteria fail) and one
  rule per condition (run only when a branch did not fire and some of its facts are missing,
  to tell a branch that is proven false from one that is merely unknown). The first is the
  conjunction of the branch rules, with the same guards, so it passes exactly when they do.
  The conditions are asked with only the fields of those undecided branches' conditions: every
  condition rule is guarded by ``$ex`` on each field it reads, so the others cannot fire, and
  the round trip each fired rule costs is paid for the conditions that matter alone.
* Each ruleset's name carries its fingerprint, so two versions of a ruleset never share one.
* The rules run in durable-rules' C engine (``durable_rules_engine``, the extension its Python
  layer drives), and we drive it directly: a rule that fires is a name to record, nothing
  more. The Python layer's ``Host`` and ``Closure`` turn each fired rule into a round trip of
  about 40 µs: the session state and the matched fact parsed from JSON, the state encoded
  again and re-asserted through the whole network (``update_state``), callbacks and promises.
  We read the rule's name off the front of the engine's answer and ask for the next one. Its
  ``Host`` also started timer threads that raced the caller and crashed a prototype; none
  runs now. All calls must still come from one thread, the event loop's; this is enforced.
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

import durable_rules_engine as _rete

from miaopi.eligibility.compile import (
    ALWAYS,
    TYPE,
    Branch,
    BranchResults,
    Compiled,
    compile_ruleset,
    encode,
    field_of,
)
from miaopi.eligibility.model import Ruleset

_sessions = itertools.count(1)


def _json(fact: dict[str, Any]) -> str:
    return json.dumps(fact, ensure_ascii=False)


class _Network:
    """One ruleset compiled into durable-rules' C engine."""

    def __init__(self, name: str, definition: dict[str, Any]) -> None:
        self.name = name
        self._handle = _rete.create_ruleset(name, _json(definition))

    def fired(self, fact: str) -> frozenset[str]:
        """The rules a fact (a JSON object) matches, asserted in a session of its own that is
        then deleted."""
        # A counter, not a random id: sessions live for one call on one thread, and a random
        # id cost a system call per assertion.
        sid = str(next(_sessions))
        handle = self._handle
        try:
            code, state = _rete.assert_fact(handle, f'{fact[:-1]},"sid":"{sid}"}}')
            if code != 0:  # 1: no rule matched, which the catch-all rule rules out
                raise RuntimeError(f"durable-rules refused the fact in {self.name}: code {code}")
            fired: list[str] = []
            started = _rete.start_action_for_state(handle, state)
            # Each answer is the JSON {"<rule>": <matched facts>}; rule names are identifiers.
            message = None if started is None else started[1]
            while message is not None:
                fired.append(message[2 : message.index('"', 2)])
                message = _rete.complete_and_start_action(handle, state)
            return frozenset(fired)
        finally:
            _rete.delete_state(handle, sid)



class RuleEngine:
    """Evaluates rulesets with durable-rules. One instance per process; one thread only."""

    def __init__(self, *, shortcuts: bool = True) -> None:
        # shortcuts=False asks branch by branch, and every condition with every fact: the plain
        # reading of the rules, which tests compare the shortcuts with.
        self._shortcuts = shortcuts
        self._compiled: dict[str, Compiled] = {}
        self._networks: dict[str, _Network] = {}
        self._owner: int | None = None

    def _check_thread(self) -> None:
        me = threading.get_ident()
        if self._owner is None:
            self._owner = me
        elif self._owner != me:
            raise RuntimeError(
                "durable-rules must only be called from the event loop's thread; "
                "evaluate from async code, never from a threadpool"
            )

    def prepare(self, ruleset: Ruleset) -> None:
        """Compile and register a ruleset (idempotent; registration happens once)."""
        self._check_thread()
        if ruleset.fingerprint in self._compiled:
            return
        compiled = compile_ruleset(ruleset)
        for name, rules in (
            (compiled.all_name, compiled.all_definition),
            (compiled.name, compiled.definition),
            (compiled.conditions_name, compiled.conditions_definition),
            (compiled.entitlements_name, compiled.entitlements_definition),
        ):
            self._networks[name] = _Network(name, rules)
        self._compiled[ruleset.fingerprint] = compiled

    def _assert(self, ruleset_name: str, fact: str) -> frozenset[str]:
        return self._networks[ruleset_name].fired(fact)

    def run(self, ruleset: Ruleset, facts: dict[str, Any]) -> BranchResults:
        """Assert the facts and report which rules fired."""
        self.prepare(ruleset)
        compiled = self._compiled[ruleset.fingerprint]
        fact, operands = self._fact(compiled, facts)
        present = frozenset(fact)
        encoded = _json(fact)  # once, for both passes that take it whole
        if (
            self._shortcuts
            and compiled.all_hold
            and compiled.all_hold <= self._assert(compiled.all_name, encoded)
        ):
            return BranchResults(True, frozenset(), present, operands, frozenset())
        fired = self._assert(compiled.name, encoded)
        # Only a criterion with no passing branch can hinge on which condition is false.
        passed = {b.criterion for b in compiled.branches if b.rule in fired}
        undecided = [
            b
            for b in compiled.branches
            if b.criterion not in passed and not present.issuperset(b.fields)
        ]
        true_conditions: frozenset[str] = frozenset()
        if undecided:
            asked = fact
            if self._shortcuts:
                needed = ALWAYS.union(*(c.fields for b in undecided for c in b.conditions))
                asked = {k: v for k, v in fact.items() if k in needed}
            true_conditions = self._assert(compiled.conditions_name, _json(asked))
        return BranchResults(False, fired, present, operands, true_conditions)

    def entitled(self, ruleset: Ruleset, facts: dict[str, Any]) -> list[tuple[str, Any]]:
        """(entitlement id, amount) of every entitlement whose conditions hold."""
        if not ruleset.entitlements:
            return []
        self.prepare(ruleset)
        compiled = self._compiled[ruleset.fingerprint]
        fact, _ = self._fact(compiled, facts)
        fired = self._assert(compiled.entitlements_name, _json(fact))
        granted = []
        for entitlement in ruleset.entitlements:
            key = facts.get(entitlement.amount.key)
            amount = None if key is None else entitlement.amount.resolve(key)
            if entitlement.id in fired and amount is not None:
                granted.append((entitlement.id, amount))
        return granted

    def _fact(
        self, compiled: Compiled, facts: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        fact: dict[str, Any] = {"t": TYPE, "id": 1}
        for name, value in facts.items():
            if value is not None:
                fact[field_of(name)] = encode(value)
        operands: dict[str, dict[str, Any]] = {}
        for criterion, label, value in compiled.labelled:
            operands.setdefault(criterion, {})[label] = value
        for aux in compiled.aux:
            value = aux.value(facts)
            operands.setdefault(aux.criterion, {})[aux.label] = value
            if value is not None:
                fact[aux.field] = encode(value)
        return fact, operands

    def branches(self, ruleset: Ruleset) -> tuple[Branch, ...]:
        self.prepare(ruleset)
        return self._compiled[ruleset.fingerprint].branches
