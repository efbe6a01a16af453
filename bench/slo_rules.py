"""SLO rule sets for the rule-evaluation benchmark: Shepherd's fleet-wide set vs one set per SLO.

Sloth and Pyrra write a rule set per SLO with the selector and the target as literals; at N
AgentDeployments that is N copies. Shepherd writes one set per distinct SLO window and joins on
``shepherd_slo_*`` series. Both sets below compute the same things (availability and latency
burn rates on the same windows, the full-window SLI, the same multiwindow alerts), so comparing
Prometheus' ``prometheus_rule_group_last_duration_seconds`` of the two at 500 resources is fair.

Functions only; the benchmark (bench/slo_fleet.py) loads the groups into a real Prometheus and
serves ``bench_resources(n)`` through ``shepherd.slo.objectives.ObjectivesCollector``.
"""

from __future__ import annotations

from typing import Any

from shepherd.slo.rules import fmt_number, rule_groups
from shepherd.slo.windows import format_duration, parse_duration, scale_windows

NAMESPACE = "bench"


def resource_name(i: int) -> str:
    return f"agent-{i:04d}"


def bench_resources(
    n: int,
    *,
    slo_window: str = "30d",
    target: float = 99.9,
    latency_target: float = 99,
    threshold: float = 1.0,
) -> list[dict[str, Any]]:
    """N AgentDeployment-like dicts with the same SLO and cost budget, for ObjectivesCollector."""
    slo = {
        "window": slo_window,
        "availability": {"target": target},
        "latency": {"target": latency_target, "thresholdSeconds": threshold},
    }
    spec = {"slo": slo, "costBudget": {"usdPerDay": 100, "usdPerMonth": 2000}}
    return [{"metadata": {"namespace": NAMESPACE, "name": resource_name(i)}, "spec": spec} for i in range(n)]


def fleet_rule_groups(slo_window: str = "30d") -> list[dict[str, Any]]:
    """Shepherd's set: independent of N."""
    return rule_groups([slo_window])


def per_resource_rule_groups(
    n: int,
    *,
    slo_window: str = "30d",
    target: float = 0.999,
    latency_target: float = 0.99,
    latency_le: str = "1.0",
) -> list[dict[str, Any]]:
    """The Sloth/Pyrra way: per resource and SLI, literal selectors and thresholds.

    Per SLO: one error-ratio rule per window, Pyrra's full-window ``increase()`` ratio, and the
    four multiwindow burn-rate alerts. Availability counts runs only (the fleet set also counts
    non-run requests), latency is the run duration: what a Sloth user would write for runs.
    """
    ws = scale_windows(parse_duration(slo_window))
    groups = []
    for i in range(n):
        sel = f'namespace="{NAMESPACE}", agentdeployment="{resource_name(i)}"'
        slis = {
            "availability": (
                target,
                f'sum(rate(agent_runs_total{{{sel}, outcome=~"error|timeout"}}[WINDOW]))',
                f'sum(rate(agent_runs_total{{{sel}, outcome=~"success|interrupted|error|timeout"}}[WINDOW]))',
            ),
            "latency": (
                latency_target,
                f"sum(rate(agent_run_duration_seconds_count{{{sel}}}[WINDOW])) - sum(rate("
                f'agent_run_duration_seconds_bucket{{{sel}, le="{latency_le}"}}[WINDOW]))',
                f"sum(rate(agent_run_duration_seconds_count{{{sel}}}[WINDOW]))",
            ),
        }
        rules: list[dict[str, Any]] = []
        for sli, (objective, errors, total) in slis.items():
            labels = {"slo": f"{resource_name(i)}-{sli}", "namespace": NAMESPACE}
            for window in ws.burn_windows:
                w = format_duration(window)
                expr = f"({errors.replace('WINDOW', w)}) / ({total.replace('WINDOW', w)})"
                rules.append({"record": f"slo:sli_error:ratio_rate{w}", "expr": expr, "labels": labels})
            increase = f"({errors}) / ({total})".replace("rate(", "increase(").replace("WINDOW", slo_window)
            rules.append(
                {"record": f"slo:sli_error:ratio_increase{slo_window}", "expr": increase, "labels": labels}
            )
            for row in ws.burn:
                threshold = fmt_number(row.factor * (1 - objective))
                long, short = format_duration(row.long), format_duration(row.short)
                rules.append(
                    {
                        "alert": "ErrorBudgetBurn",
                        "expr": f'slo:sli_error:ratio_rate{long}{{slo="{labels["slo"]}"}} > {threshold}'
                        f' and slo:sli_error:ratio_rate{short}{{slo="{labels["slo"]}"}} > {threshold}',
                        "for": format_duration(row.for_),
                        "labels": {"severity": row.severity, "long": long, "short": short, **labels},
                    }
                )
        groups.append({"name": f"slo-{resource_name(i)}", "rules": rules})
    return groups


def rule_count(groups: list[dict[str, Any]]) -> int:
    return sum(len(g["rules"]) for g in groups)
