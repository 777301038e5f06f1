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
import re
import threading
from dataclasses import dataclass
from datetime import date
from typing import Any

import durable_rules_engine as _rete

from miaopi.eligibility.dates import add_years
from miaopi.eligibility.ruleset import Condition, Const, DateAdd, FactRef, Lookup, Ruleset

_TYPE = "application"
_ALWAYS = frozenset({"t", "id"})  # the fields every fact carries: the type guard and its id
# durable-rules compiles each rule's conditions into at most 31 expressions: a nested $and or
# $or takes two, a comparison with another field one, a comparison with a constant none.
_MAX_EXPRESSIONS = 31


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


def _field(fact: str) -> str:
    return "f_" + fact


def _encode(value: Any) -> Any:
    return value.toordinal() if isinstance(value, date) else value


def _not_prefix(field: str, prefix: str) -> dict[str, Any]:
    # durable's regex subset has no negation or lookahead, so "does not start with P" is the
    # union of "differs at position i" for each i, plus "shorter than P".
    alternatives: list[dict[str, Any]] = [
        {"$mt": {field: re.escape(prefix[:i]) + "[^" + prefix[i] + "].*"}}
        for i in range(len(prefix))
    ]
    alternatives.append({"$mt": {field: f".{{0,{len(prefix) - 1}}}"}})
    return {"$or": alternatives}


@dataclass(frozen=True, slots=True)
class _Aux:
    """An operand computed per evaluation: a table lookup or a date shifted by years."""

    criterion: str
    field: str
    label: str
    operand: Lookup | DateAdd

    def value(self, facts: dict[str, Any]) -> Any:
        if isinstance(self.operand, Lookup):
            key = facts.get(self.operand.key)
            return None if key is None else self.operand.resolve(key)
        base = facts.get(self.operand.fact)
        return None if base is None else add_years(base, self.operand.years)


@dataclass(frozen=True, slots=True)
class _Condition:
    rule: str
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Branch:
    rule: str
    criterion: str
    fields: tuple[str, ...]  # every field the branch reads
    conditions: tuple[_Condition, ...]


@dataclass(frozen=True)
class _Compiled:
    all_name: str
    all_definition: dict[str, Any]
    all_hold: frozenset[str]  # the rules that all fire when every criterion holds
    name: str
    branches: tuple[_Branch, ...]
    aux: tuple[_Aux, ...]
    definition: dict[str, Any]
    conditions_name: str
    conditions_definition: dict[str, Any]
    labelled: tuple[tuple[str, str, Any], ...]  # (criterion, label, value) of named constants
    entitlements_name: str
    entitlements_definition: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BranchResults:
    """What the engine saw: fired rules, present fields, the operand values it computed."""

    all_passed: bool  # every criterion has a branch that matched
    fired: frozenset[str]  # branch rules that matched (asked only when not all passed)
    present: frozenset[str]  # fields that had a value
    operands: dict[str, dict[str, Any]]  # criterion → computed operand label → value
    true_conditions: frozenset[str]  # condition rules that matched (third pass only)


def _compile(ruleset: Ruleset) -> _Compiled:
    fp = ruleset.fingerprint.removeprefix("sha256:")[:16]
    name = f"{ruleset.business_type}_{ruleset.version.replace('.', '_')}_{fp}"
    rules: dict[str, Any] = {}
    condition_rules: dict[str, Any] = {}
    branches: list[_Branch] = []
    aux: list[_Aux] = []
    labelled: list[tuple[str, str, Any]] = []

    def guarded(matchers: list[dict[str, Any]], fields: list[str]) -> list[dict[str, Any]]:
        return [*({"$ex": {f: 1}} for f in fields), *matchers]

    def rule_for(matchers: list[dict[str, Any]], fields: list[str]) -> dict[str, Any]:
        return {"all": [{"m": {"$and": [{"t": _TYPE}, *guarded(matchers, fields)]}}]}

    every_criterion: list[list[dict[str, Any]]] = []
    for criterion in ruleset.criteria:
        alternatives: list[list[dict[str, Any]]] = []
        for b, conditions in enumerate(criterion.branches):
            rule = f"{criterion.id}__{b}"
            matchers: list[dict[str, Any]] = []
            fields: list[str] = []
            compiled_conditions: list[_Condition] = []
            for k, condition in enumerate(conditions):
                operand = condition.operand
                if isinstance(operand, Const) and operand.label:
                    labelled.append((criterion.id, operand.label, operand.value))
                matcher, used, extra = _leaf(condition, criterion.id, f"x_{criterion.id}_{b}_{k}")
                matchers.append(matcher)
                fields.extend(used)
                aux.extend(extra)
                used = list(dict.fromkeys(used))
                condition_rules[f"{rule}__{k}"] = rule_for([matcher], used)
                compiled_conditions.append(_Condition(f"{rule}__{k}", tuple(used)))
            fields = list(dict.fromkeys(fields))
            rules[rule] = rule_for(matchers, fields)
            alternatives.append(guarded(matchers, fields))
            branches.append(_Branch(rule, criterion.id, tuple(fields), tuple(compiled_conditions)))
        every_criterion.append(
            alternatives[0]
            if len(alternatives) == 1
            else [{"$or": [{"$and": a} for a in alternatives]}]
        )
    entitlement_rules: dict[str, Any] = {}
    for entitlement in ruleset.entitlements:
        matchers, fields = [], []
        for k, condition in enumerate(entitlement.branches[0]):
            matcher, used, extra = _leaf(condition, entitlement.id, f"e_{entitlement.id}_{k}")
            matchers.append(matcher)
            fields.extend(used)
            aux.extend(extra)
        entitlement_rules[entitlement.id] = rule_for(matchers, list(dict.fromkeys(fields)))
    seen = {"all": [{"m": {"t": _TYPE}}]}
    rules["seen"] = condition_rules["seen"] = entitlement_rules["seen"] = seen
    all_rules: dict[str, Any] = {"seen": seen}
    for k, part in enumerate(_packed(every_criterion)):
        all_rules[f"all_hold__{k}"] = {"all": [{"m": {"$and": [{"t": _TYPE}, *part]}}]}
    return _Compiled(
        name + "_all",
        all_rules,
        frozenset(all_rules) - {"seen"},
        name,
        tuple(branches),
        tuple(aux),
        rules,
        name + "_conditions",
        condition_rules,
        tuple(labelled),
        name + "_entitlements",
        entitlement_rules,
    )


def _expressions(matcher: Any) -> int:
    if isinstance(matcher, list):
        return sum(_expressions(m) for m in matcher)
    if not isinstance(matcher, dict):
        return 0
    if "$and" in matcher or "$or" in matcher:
        return 2 + _expressions(matcher.get("$and", matcher.get("$or")))
    (operand,) = matcher.values()
    if isinstance(operand, dict):  # {"$op": {field: right}}
        (operand,) = operand.values()
    return 1 if isinstance(operand, dict) and "$m" in operand else 0


def _packed(criteria: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """The criteria's conjunctions, packed into as few rules as durable's limit allows.

    None fit when one criterion alone exceeds the limit: there is then no shortcut.
    """
    parts: list[list[dict[str, Any]]] = [[]]
    room = _MAX_EXPRESSIONS - 2  # the rule's own $and
    for matchers in criteria:
        cost = _expressions(matchers)
        if cost > _MAX_EXPRESSIONS - 2:
            return []
        if cost > room and parts[-1]:
            parts.append([])
            room = _MAX_EXPRESSIONS - 2
        parts[-1].extend(matchers)
        room -= cost
    return parts


def _leaf(
    condition: Condition, criterion: str, aux_field: str
) -> tuple[dict[str, Any], list[str], list[_Aux]]:
    field = _field(condition.fact)
    used = [field]
    extra: list[_Aux] = []
    operand = condition.operand
    if isinstance(operand, Const):
        right: Any = operand.value
    elif isinstance(operand, FactRef):
        right = {"$m": _field(operand.name)}
        used.append(_field(operand.name))
    else:
        right = {"$m": aux_field}
        used.append(aux_field)
        extra.append(_Aux(criterion, aux_field, operand.label, operand))

    op = condition.op
    if op == "eq":
        return {field: _encode(right)}, used, extra
    if op == "ne":
        return {"$neq": {field: _encode(right)}}, used, extra
    if op in ("lt", "lte", "gt", "gte"):
        return {f"${op}": {field: _encode(right)}}, used, extra
    if op == "in":
        if not right:
            return {"$and": [{field: 0}, {"$neq": {field: 0}}]}, used, extra  # never true
        return {"$or": [{field: _encode(v)} for v in right]}, used, extra
    if op == "not_in":
        if not right:
            return {"$ex": {field: 1}}, used, extra
        return {"$and": [{"$neq": {field: _encode(v)}} for v in right]}, used, extra
    if op == "starts_with":
        return {"$mt": {field: re.escape(right) + ".*"}}, used, extra
    if op == "not_starts_with":
        return _not_prefix(field, right), used, extra
    raise ValueError(f"unsupported operator {op}")  # the loader rejects these first


class RuleEngine:
    """Evaluates rulesets with durable-rules. One instance per process; one thread only."""

    def __init__(self, *, shortcuts: bool = True) -> None:
        # shortcuts=False asks branch by branch, and every condition with every fact: the plain
        # reading of the rules, which tests compare the shortcuts with.
        self._shortcuts = shortcuts
        self._compiled: dict[str, _Compiled] = {}
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
        compiled = _compile(ruleset)
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
                needed = _ALWAYS.union(*(c.fields for b in undecided for c in b.conditions))
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
        self, compiled: _Compiled, facts: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        fact: dict[str, Any] = {"t": _TYPE, "id": 1}
        for name, value in facts.items():
            if value is not None:
                fact[_field(name)] = _encode(value)
        operands: dict[str, dict[str, Any]] = {}
        for criterion, label, value in compiled.labelled:
            operands.setdefault(criterion, {})[label] = value
        for aux in compiled.aux:
            value = aux.value(facts)
            operands.setdefault(aux.criterion, {})[aux.label] = value
            if value is not None:
                fact[aux.field] = _encode(value)
        return fact, operands

    def branches(self, ruleset: Ruleset) -> tuple[_Branch, ...]:
        self.prepare(ruleset)
        return self._compiled[ruleset.fingerprint].branches
