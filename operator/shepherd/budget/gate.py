"""The policy's verdict as the reconcile sees it: may this resource's changed workload roll out now?

``FreezeGate`` is the ``VerdictProvider`` given to ``shepherd.reconcile.Reconciler``. It reads the
freeze from the resource's own status (written by the watcher, so it survives restarts and every
reconcile sees the same truth) and asks ``policy.decide_hold``. A freeze override that lets a
rollout through is remembered at once in an in-memory ``OverrideLedger`` — so a second reconcile a
moment later already knows it is used up — and the watcher is woken to record it in status and
post the Event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shepherd.api import AgentDeployment
from shepherd.budget import policy
from shepherd.reconcile import Verdict


class OverrideLedger:
    """Overrides used but not yet seen in status, by resource uid."""

    def __init__(self, on_record: Callable[[], None] | None = None) -> None:
        self._by_uid: dict[str, list[dict[str, Any]]] = {}
        self.on_record = on_record

    def record(self, uid: str, use: policy.OverrideUse) -> None:
        self._by_uid.setdefault(uid, []).append(use.as_status())
        if self.on_record is not None:
            self.on_record()

    def get(self, uid: str) -> list[dict[str, Any]]:
        return list(self._by_uid.get(uid, []))

    def settle(self, uid: str, persisted: list[dict[str, Any]]) -> None:
        """Forget entries that status now holds."""
        done = {(u.get("generation"), u.get("reason")) for u in persisted}
        left = [u for u in self._by_uid.get(uid, []) if (u["generation"], u["reason"]) not in done]
        if left:
            self._by_uid[uid] = left
        else:
            self._by_uid.pop(uid, None)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class FreezeVerdict(Verdict):
    """A ``Verdict`` whose ``blocks`` applies the full hold decision (override use, critical class)."""

    ledger: OverrideLedger | None = None
    clock: Callable[[], dt.datetime] = _utcnow

    def blocks(self, resource: AgentDeployment) -> str | None:
        freeze = resource.status.get("freeze") or {}
        released = (resource.status.get("released") or {}).get("generation")
        pending_uses = self.ledger.get(resource.uid) if self.ledger else []
        decision = policy.decide_hold(
            level=self.level,
            reason=self.reason or None,
            annotations=resource.annotations,
            generation=resource.generation,
            released_generation=released,
            overrides_used=policy.merge_overrides(freeze.get("overridesUsed") or [], pending_uses),
            now=self.clock(),
        )
        if decision.override is not None and self.ledger is not None:
            self.ledger.record(resource.uid, decision.override)
        return decision.held


@dataclass
class FreezeGate:
    """``VerdictProvider``: the freeze recorded in the resource's status, with the hold rules."""

    ledger: OverrideLedger = field(default_factory=OverrideLedger)
    clock: Callable[[], dt.datetime] = _utcnow

    def __call__(self, resource: AgentDeployment) -> FreezeVerdict:
        state = policy.PolicyState.from_status(resource.status)
        return FreezeVerdict(
            level=state.level, reason=state.reason or "", ledger=self.ledger, clock=self.clock
        )
