"""The fleet board: every AgentDeployment's SLO, budget, burn, freeze, circuits, failures and spend."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import dashboard as dm
from shepherd.slo.rules import availability_exprs

from .common import (
    BY,
    FREEZE_MAPPINGS,
    FREEZE_METRIC,
    SEL,
    datasource_variable,
    graph,
    query,
    scope_variables,
    single,
    table_of,
    thresholds,
    timeline,
    with_threshold_lines,
)
from .layout import place

TITLE = "Shepherd / Fleet"
#: Panels whose queries return data only in some situations (panel title -> what they need).
NEEDS = {
    "Circuits not closed": "a model that goes through a circuit breaker (provider anthropic)",
    "AgentDeployments#F": "a model that goes through a circuit breaker (provider anthropic)",
    "AgentDeployments#G": "runs that ended in an error or a timeout",
    "AgentDeployments#I": "spec.costBudget.usdPerDay",
    "Failed runs by reason": "runs that ended in an error or a timeout",
}
WHO = "{{namespace}}/{{agentdeployment}}"

COST_PER_DAY = f"sum by ({BY}) (increase(agent_llm_cost_usd_total{{{SEL}}}[1d]))"
CIRCUITS_NOT_CLOSED = f"sum by ({BY}) (max by ({BY}, circuit) (agent_circuit_state{{{SEL}}}) > bool 0)"
BUDGET_LEFT = f"min by ({BY}) (shepherd:slo_error_budget_remaining:ratio{{{SEL}}})"
WORST_BURN = f"max by ({BY}) (shepherd:slo_burn_rate{{{SEL}}})"
FREEZE = f"max by ({BY}) ({FREEZE_METRIC}{{{SEL}}})"
FAILED_RUNS = f'sum by ({BY}) (rate(agent_runs_total{{{SEL}, outcome=~"error|timeout"}}[5m]))'
DAY_SPEND_BURN = f'max by ({BY}) (shepherd:spend_burn_rate{{{SEL}, period="day", window="1h"}})'
EVENTS, BAD = availability_exprs("$__rate_interval", matchers=SEL)


def overview_table():
    columns = [
        ("Objective", f'max by ({BY}) (shepherd_slo_objective{{{SEL}, sli="availability"}})', "percentunit"),
        (
            "Availability (SLO window)",
            f'1 - max by ({BY}) (shepherd:slo_error_ratio{{{SEL}, sli="availability"}})',
            "percentunit",
        ),
        ("Budget left", BUDGET_LEFT, "percentunit"),
        ("Worst burn rate", WORST_BURN, "short"),
        ("Freeze", FREEZE, "none"),
        ("Circuits not closed", CIRCUITS_NOT_CLOSED, "none"),
        ("Failed runs / s", FAILED_RUNS, "ops"),
        ("Cost / day", COST_PER_DAY, "currencyUSD"),
        ("Spend burn (day, 1h)", DAY_SPEND_BURN, "short"),
        ("Runs / s", f"sum by ({BY}) (rate(agent_runs_total{{{SEL}}}[5m]))", "ops"),
        ("Requests / s", f"sum by ({BY}) (rate(agent_http_requests_total{{{SEL}}}[5m]))", "reqps"),
    ]
    freeze = [
        dm.DynamicConfigValue(id_val="mappings", value=[m.to_json() for m in FREEZE_MAPPINGS]),
        dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
    ]
    return table_of(
        "AgentDeployments",
        "One row per AgentDeployment. Budget left is the lowest of its SLIs over its SLO window; "
        "worst burn rate the highest over any alert window; freeze from the error-budget policy.",
        columns,
        {"Freeze": freeze},
    )


def board() -> db.Dashboard:
    budget = with_threshold_lines(
        graph(
            "Error budget remaining",
            "Lowest remaining error budget over the SLO window across the SLIs (1 = untouched, "
            "below 0 = overspent). Dashed lines: 25 % and 0 % left.",
            query(BUDGET_LEFT, WHO),
            unit="percentunit",
        ),
        thresholds((None, "red"), (0, "orange"), (0.25, "green")),
    )
    burn = with_threshold_lines(
        graph(
            "Worst burn rate",
            "Highest burn rate over any alert window (1 = spending exactly the budget over the "
            "SLO window). Dashed lines: 1x and 14.4x (fast-burn page at 30d).",
            query(WORST_BURN, WHO),
        ),
        thresholds((None, "green"), (1, "orange"), (14.4, "red")),
    )
    freeze = timeline(
        "Freeze state",
        f"Rollout freeze imposed by the error-budget policy ({FREEZE_METRIC}: 0 None, 1 NonCritical, 2 All).",
        FREEZE,
        WHO,
        FREEZE_MAPPINGS,
    )
    circuits = graph(
        "Circuits not closed",
        "LLM circuit breakers open or half-open in at least one pod, per AgentDeployment.",
        query(CIRCUITS_NOT_CLOSED, WHO),
    )
    cost = graph(
        "Cost per day", "LLM spend over the last 24 hours.", query(COST_PER_DAY, WHO), unit="currencyUSD"
    )
    availability = graph(
        "Availability",
        "Share of good events: runs that ended success or interrupted, and requests without a run "
        "not answered with a 5xx.",
        query(f"1 - (\n({BAD}) or 0 * {EVENTS}\n)\n/\n{EVENTS}", WHO),
        unit="percentunit",
    )
    reasons = graph(
        "Failed runs by reason",
        "Runs that ended in an error or a timeout per second across the selected AgentDeployments, "
        "by reason.",
        query(
            f'sum by (reason) (rate(agent_runs_total{{{SEL}, outcome=~"error|timeout"}}[$__rate_interval]))',
            "{{reason}}",
        ),
        unit="ops",
    )
    prometheus_up = single(
        "Operator reaches Prometheus",
        "shepherd_prometheus_up: 1 when the budget watcher's last query set succeeded.",
        "min(shepherd_prometheus_up)",
        unit="bool_yes_no",
    )
    reconciles = graph(
        "Reconciles",
        "Reconciliations per second and the ones that ended in an error.",
        query(f"sum by ({BY}) (rate(shepherd_reconcile_total{{{SEL}}}[$__rate_interval]))", f"{WHO} total"),
        query(
            f"sum by ({BY}) (rate(shepherd_reconcile_errors_total{{{SEL}}}[$__rate_interval]))",
            f"{WHO} errors",
        ),
        unit="ops",
    )
    dashboard = (
        db.Dashboard(TITLE)
        .tags(["shepherd", "slo"])
        .time("now-24h", "now")
        .refresh("1m")
        .with_variable(datasource_variable())
    )
    for variable in scope_variables(multi=True):
        dashboard = dashboard.with_variable(variable)
    return place(
        dashboard,
        [
            ("Fleet", [[(overview_table(), 24, 10)]]),
            ("Error budgets", [[(budget, 12, 8), (burn, 12, 8)], [(freeze, 24, 6)]]),
            (
                "Health and cost",
                [[(availability, 12, 8), (reasons, 12, 8)], [(circuits, 12, 8), (cost, 12, 8)]],
            ),
            ("Operator", [[(prometheus_up, 6, 6), (reconciles, 18, 6)]]),
        ],
    )
