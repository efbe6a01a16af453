"""The budget state of the whole fleet from a fixed set of queries, parsed into per-resource snapshots.

Six queries per evaluation, whatever the number of AgentDeployments (the recording rules are
written by ``shepherd.slo.rules``; the names below are that module's contract):

``remaining``  ``shepherd:slo_error_budget_remaining:ratio`` — the request-weighted budget left over
               the whole SLO window, one series per (namespace, agentdeployment, sli).
``burn``       ``max by (namespace, agentdeployment, window) (shepherd:slo_burn_rate)`` — the worst
               SLI's burn rate per alert window.
``circuits``   ``max by (namespace, agentdeployment, circuit) (agent_circuit_state)`` — the worst pod's
               view of each circuit (0 closed, 1 half-open, 2 open).
``failures``   ``shepherd:slo_run_failures:ratio`` — per failure reason, the share of the SLO window's
               availability events that were runs failed for that reason.
``spend_today``, ``spend_month``  ``sum_over_time`` of ``shepherd:llm_cost_usd:step_increase`` since
               00:00 UTC and since the 1st of the month: the ranges depend on the moment of the
               evaluation (``queries(now)``), the number of queries does not.

Parsing is pure, so it is unit-tested on Prometheus JSON answers.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from shepherd.budget.prometheus import Sample
from shepherd.slo.windows import parse_duration

REMAINING_RECORD = "shepherd:slo_error_budget_remaining:ratio"
BURN_RATE_RECORD = "shepherd:slo_burn_rate"
CIRCUIT_METRIC = "agent_circuit_state"

FAILURES_RECORD = "shepherd:slo_run_failures:ratio"
SPEND_STEP_RECORD = "shepherd:llm_cost_usd:step_increase"


def queries(now: dt.datetime) -> dict[str, str]:
    """The query set of one evaluation at ``now`` (UTC), by the names ``parse`` reads."""
    now = now.astimezone(dt.UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)

    def spend_since(start: dt.datetime) -> str:
        seconds = max(1, int((now - start).total_seconds()))
        return f"sum by (namespace, agentdeployment) (sum_over_time({SPEND_STEP_RECORD}[{seconds}s]))"

    return {
        "remaining": REMAINING_RECORD,
        "burn": f"max by (namespace, agentdeployment, window) ({BURN_RATE_RECORD})",
        "circuits": f"max by (namespace, agentdeployment, circuit) ({CIRCUIT_METRIC})",
        "failures": f"max by (namespace, agentdeployment, reason) ({FAILURES_RECORD})",
        "spend_today": spend_since(midnight),
        "spend_month": spend_since(midnight.replace(day=1)),
    }


CIRCUIT_STATES = {0: "closed", 1: "half-open", 2: "open"}

Key = tuple[str, str]  # (namespace, agentdeployment)


@dataclass(frozen=True)
class Snapshot:
    """What Prometheus says about one AgentDeployment at one evaluation."""

    #: Budget left over the SLO window in percent of the budget (negative once overspent); the
    #: worst SLI counts. None when the window has no events yet.
    remaining_percent: float | None = None
    #: Burn rate per alert window (worst SLI), e.g. {"5m": 14.2, "1h": 3.1}.
    burn_rates: Mapping[str, float] = field(default_factory=dict)
    #: Circuit name -> "closed" | "half-open" | "open".
    circuits: Mapping[str, str] = field(default_factory=dict)
    #: Failure reason -> share of the SLO window's events that were runs failed for it.
    failure_reasons: Mapping[str, float] = field(default_factory=dict)
    #: USD spent since 00:00 UTC and since the 1st (None: no spend series).
    spend_today: float | None = None
    spend_month: float | None = None

    @property
    def top_failure_reason(self) -> tuple[str, float] | None:
        """The most frequent failure reason and its share of the failed runs, if any failed."""
        total = sum(self.failure_reasons.values())
        if total <= 0:
            return None
        reason = max(sorted(self.failure_reasons), key=lambda r: self.failure_reasons[r])
        return reason, self.failure_reasons[reason] / total

    @property
    def consumed_percent(self) -> float | None:
        return None if self.remaining_percent is None else 100.0 - self.remaining_percent

    @property
    def has_budget(self) -> bool:
        return self.remaining_percent is not None


def _key(sample: Sample) -> Key | None:
    ns, name = sample.labels.get("namespace"), sample.labels.get("agentdeployment")
    return (ns, name) if ns and name else None


def _window_order(window: str) -> float:
    try:
        return parse_duration(window).total_seconds()
    except ValueError:
        return math.inf


def parse(answers: Mapping[str, list[Sample]]) -> dict[Key, Snapshot]:
    """Snapshots by (namespace, agentdeployment) from the answers to ``queries`` (by the same keys).

    NaN values (a window with no events: 0/0) carry no information and are dropped; a resource
    with only circuits or only burn rates still gets a snapshot (its budget stays None).
    """
    remaining: dict[Key, float] = {}
    for sample in answers.get("remaining", []):
        key = _key(sample)
        if key is None or math.isnan(sample.value):
            continue
        remaining[key] = min(remaining.get(key, math.inf), sample.value)
    burns: dict[Key, dict[str, float]] = {}
    for sample in answers.get("burn", []):
        key, window = _key(sample), sample.labels.get("window")
        if key is None or not window or math.isnan(sample.value):
            continue
        per = burns.setdefault(key, {})
        per[window] = max(per.get(window, -math.inf), sample.value)
    circuits: dict[Key, dict[str, str]] = {}
    for sample in answers.get("circuits", []):
        key, name = _key(sample), sample.labels.get("circuit")
        if key is None or not name or not sample.finite:
            continue
        code = min(max(round(sample.value), 0), 2)
        per = circuits.setdefault(key, {})
        per[name] = CIRCUIT_STATES[max(code, _code(per.get(name)))]
    failures: dict[Key, dict[str, float]] = {}
    for sample in answers.get("failures", []):
        key, reason = _key(sample), sample.labels.get("reason")
        if key is not None and reason and sample.finite and sample.value > 0:
            failures.setdefault(key, {})[reason] = sample.value
    spend = {name: _per_key(answers.get(name, [])) for name in ("spend_today", "spend_month")}
    out: dict[Key, Snapshot] = {}
    keys = remaining.keys() | burns.keys() | circuits.keys() | failures.keys()
    for key in keys | spend["spend_today"].keys() | spend["spend_month"].keys():
        ratio = remaining.get(key)
        out[key] = Snapshot(
            remaining_percent=None if ratio is None or not math.isfinite(ratio) else ratio * 100.0,
            burn_rates=dict(sorted(burns.get(key, {}).items(), key=lambda kv: _window_order(kv[0]))),
            circuits=dict(sorted(circuits.get(key, {}).items())),
            failure_reasons=dict(sorted(failures.get(key, {}).items())),
            spend_today=spend["spend_today"].get(key),
            spend_month=spend["spend_month"].get(key),
        )
    return out


def _per_key(samples: list[Sample]) -> dict[Key, float]:
    return {key: s.value for s in samples if (key := _key(s)) is not None and s.finite}


def _code(state: str | None) -> int:
    return {v: k for k, v in CIRCUIT_STATES.items()}.get(state or "closed", 0)
