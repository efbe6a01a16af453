"""The per-AgentDeployment board: SLIs against objectives, budget, burn, runs, traffic, LLM, spend, freeze."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import dashboard as dm
from shepherd.slo.rules import SPEND_BURN, RuleConfig, availability_exprs
from shepherd.slo.windows import SRE_WORKBOOK_30D, format_duration

from .common import (
    CIRCUIT_MAPPINGS,
    DATASOURCE,
    FREEZE_MAPPINGS,
    FREEZE_METRIC,
    SEL,
    datasource_variable,
    graph,
    query,
    scope_variables,
    single,
    thresholds,
    timeline,
    with_threshold_lines,
)
from .layout import place

TITLE = "Shepherd / AgentDeployment"
RATE = "[$__rate_interval]"
#: Panels whose queries return data only in some situations (panel title -> what they need).
NEEDS = {
    "Latency SLI vs objective": "a latency objective (spec.slo.latency)",
    "Time to first token": "streamed runs",
    "Circuit state": "a model that goes through a circuit breaker (provider anthropic)",
    "Rate-limited and budget-refused requests#A": "requests refused by spec.rateLimits",
    "Rate-limited and budget-refused requests#B": "requests refused by spec.tokenBudget",
    "Failed runs by reason": "runs that ended in an error or a timeout",
    "Spend, last 24h, vs budget": "spec.costBudget.usdPerDay",
    "Spend burn rate": "spec.costBudget",
    "Cost per hour#B": "spec.costBudget.usdPerDay",
    "annotation Freeze": "a frozen AgentDeployment",
}

_CONFIG = RuleConfig()
FALLBACK_RATIO = f"shepherd:agent_llm_fallback:ratio_rate{format_duration(_CONFIG.fallback_window)}"
BURN_FACTORS = sorted({row.factor for row in SRE_WORKBOOK_30D})


def http(extra: str = "") -> str:
    return f"agent_http_requests_total{{{SEL}{extra}}}"


BAD = http(', code=~"5.."')
RUN_FAILURES = f'agent_runs_total{{{SEL}, outcome=~"error|timeout"}}'
AVAILABILITY_EVENTS, AVAILABILITY_BAD = availability_exprs(RATE[1:-1], matchers=SEL)
SPEND_FACTORS = sorted({row.factor for row in SPEND_BURN})


def quantiles(metric: str) -> list:
    return [
        query(
            f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{{SEL}}}{RATE})))", f"p{int(q * 100)}"
        )
        for q in (0.5, 0.9, 0.99)
    ]


def objective(sli: str) -> str:
    return f'max(shepherd_slo_objective{{{SEL}, sli="{sli}"}})'


def slo_panels() -> list[list[tuple[object, int, int]]]:
    stats = [
        single(
            "Availability objective",
            "spec.slo.availability.target.",
            objective("availability"),
            unit="percentunit",
        ),
        single(
            "Availability over the SLO window",
            "Request-weighted share of good requests over the whole SLO window.",
            f'1 - max(shepherd:slo_error_ratio{{{SEL}, sli="availability"}})',
            unit="percentunit",
        ),
        single(
            "Budget left",
            "Lowest remaining error budget of the SLIs (below 0: overspent).",
            f"min(shepherd:slo_error_budget_remaining:ratio{{{SEL}}})",
            unit="percentunit",
        ).thresholds(thresholds((None, "red"), (0, "orange"), (0.25, "green"))),
        single("Freeze", f"Rollout freeze ({FREEZE_METRIC}).", f"max({FREEZE_METRIC}{{{SEL}}})", unit="none")
        .mappings(FREEZE_MAPPINGS)
        .thresholds(thresholds((None, "green"), (1, "orange"), (2, "red"))),
        single(
            "Spend, last 24h, vs budget",
            "LLM spend over the last 24 hours (agent_llm_cost_usd_total) in percent of "
            "spec.costBudget.usdPerDay; status.spend has the UTC day and the calendar month.",
            f"sum(increase(agent_llm_cost_usd_total{{{SEL}}}[1d]))\n"
            f'/\nmax(shepherd_slo_cost_budget_usd{{{SEL}, period="day"}})',
            unit="percentunit",
        ).thresholds(thresholds((None, "green"), (0.8, "orange"), (1, "red"))),
        single(
            "Fallback share",
            "Share of successful LLM calls served by a fallback model.",
            f"max({FALLBACK_RATIO}{{{SEL}}})",
            unit="percentunit",
        ),
    ]
    availability = graph(
        "Availability SLI vs objective",
        "Share of good events against the objective: runs that ended success or interrupted (error "
        "and timeout are bad, whatever their HTTP status; cancelled runs are no events) and "
        "requests without a run not answered with a 5xx.",
        query(
            f"1 - (\n({AVAILABILITY_BAD}) or 0 * {AVAILABILITY_EVENTS}\n)\n/\n{AVAILABILITY_EVENTS}",
            "availability",
        ),
        query(objective("availability"), "objective"),
        unit="percentunit",
    )
    latency = graph(
        "Latency SLI vs objective",
        "Share of runs finished (accepted to finished, queue wait included) within the latency "
        "threshold (the histogram bucket the operator publishes in "
        "shepherd_slo_latency_threshold_bucket), against the objective.",
        query(
            f"sum(\n  rate(agent_run_duration_seconds_bucket{{{SEL}}}{RATE})\n"
            f"  and on (namespace, agentdeployment, le)\n"
            f'  shepherd_slo_latency_threshold_bucket{{{SEL}, sli="latency"}}\n)\n'
            f"/\nsum(rate(agent_run_duration_seconds_count{{{SEL}}}{RATE}))",
            "latency SLI",
        ),
        query(objective("latency"), "objective"),
        unit="percentunit",
    )
    burndown = graph(
        "Error budget burndown",
        "Remaining error budget over the SLO window per SLI, with the error-budget policy steps "
        "(remaining = 1 - consumedPercent / 100).",
        query(f"shepherd:slo_error_budget_remaining:ratio{{{SEL}}}", "{{sli}} ({{slo_window}})"),
        query(
            f"1 - max by (step, action) (shepherd_slo_policy_step_percent{{{SEL}}}) / 100",
            "policy step {{step}}: {{action}}",
        ),
        unit="percentunit",
    )
    burn = with_threshold_lines(
        graph(
            "Burn rate per window",
            "shepherd:slo_burn_rate per SLI and alert window. Dashed lines: the burn-rate "
            f"thresholds of the alerts ({', '.join(f'{f:g}x' for f in BURN_FACTORS)}).",
            query(f"shepherd:slo_burn_rate{{{SEL}}}", "{{sli}} {{window}}"),
        ),
        thresholds((None, "green"), *[(f, "orange" if f < 6 else "red") for f in BURN_FACTORS]),
    )
    return [[(panel, 4, 4) for panel in stats], [(availability, 12, 8), (latency, 12, 8)],
            [(burndown, 12, 8), (burn, 12, 8)]]  # fmt: skip


def run_panels() -> list[list[tuple[object, int, int]]]:
    outcomes = graph(
        "Runs by outcome",
        "Runs that ended per second: success, interrupted (a human-in-the-loop pause), error, "
        "timeout, cancelled (by the caller: no SLI event), refused (a budget refused the run's model "
        "call: no SLI event).",
        query(f"sum by (outcome) (rate(agent_runs_total{{{SEL}}}{RATE}))", "{{outcome}}"),
        unit="ops",
    )
    reasons = graph(
        "Failed runs by reason",
        "Runs that ended in an error or a timeout per second, by reason: llm_unavailable, "
        "llm_rate_limited, llm_timeout, tool_error, graph_error, timeout, worker_lost.",
        query(f"sum by (reason) (rate({RUN_FAILURES}{RATE}))", "{{reason}}"),
        unit="ops",
    )
    duration = graph(
        "Run duration",
        "agent_run_duration_seconds percentiles: accepted to finished, queue wait included.",
        *quantiles("agent_run_duration_seconds"),
        unit="s",
    )
    queue = graph(
        "Runs waiting and running",
        "agent_runs_pending (the deployment's queue) and agent_runs_running summed over the pods.",
        query(f"max(agent_runs_pending{{{SEL}}})", "pending"),
        query(f"sum(agent_runs_running{{{SEL}}})", "running"),
    )
    return [[(outcomes, 12, 8), (reasons, 12, 8)], [(duration, 12, 8), (queue, 12, 8)]]


def traffic_panels() -> list[list[tuple[object, int, int]]]:
    rate = graph(
        "Requests by code",
        "HTTP requests per second by status code.",
        query(f"sum by (code) (rate({http()}{RATE}))", "{{code}}"),
        unit="reqps",
    )
    errors = graph(
        "5xx ratio",
        "Share of requests answered with a 5xx (the availability SLI's bad events).",
        query(f"(sum(rate({BAD}{RATE})) or vector(0))\n/\nsum(rate({http()}{RATE}))", "5xx"),
        unit="percentunit",
    )
    latency = graph(
        "Request latency",
        "agent_http_request_duration_seconds percentiles.",
        *quantiles("agent_http_request_duration_seconds"),
        unit="s",
    )
    ttft = graph(
        "Time to first token", "agent_ttft_seconds percentiles.", *quantiles("agent_ttft_seconds"), unit="s"
    )
    runs = graph(
        "Runs queued and running",
        "agent_runs_running summed over the pods and agent_runs_pending (the deployment's queue): their "
        "sum per Pod is the autoscaling signal.",
        query(f"sum(agent_runs_running{{{SEL}}})", "running"),
        query(f"max(agent_runs_pending{{{SEL}}})", "queued"),
    )
    return [[(rate, 8, 8), (errors, 8, 8), (runs, 8, 8)], [(latency, 12, 8), (ttft, 12, 8)]]


def llm_panels() -> list[list[tuple[object, int, int]]]:
    calls = graph(
        "LLM calls by outcome and model",
        "agent_llm_requests_total per second; outcome: success, error, timeout, rate_limited, circuit_open.",
        query(
            f"sum by (model, outcome) (rate(agent_llm_requests_total{{{SEL}}}{RATE}))",
            "{{model}} {{outcome}}",
        ),
        unit="reqps",
    )
    duration = graph(
        "LLM call latency (p90)",
        "agent_llm_request_duration_seconds p90 per model.",
        query(
            "histogram_quantile(0.9, sum by (model, le) "
            f"(rate(agent_llm_request_duration_seconds_bucket{{{SEL}}}{RATE})))",
            "{{model}}",
        ),
        unit="s",
    )
    fallback = with_threshold_lines(
        graph(
            "Fallback usage",
            f"Share of successful LLM calls served by a fallback model ({FALLBACK_RATIO}); "
            "the dashed line is the ShepherdLLMFallbackRateHigh threshold.",
            query(f"max({FALLBACK_RATIO}{{{SEL}}})", "fallback share"),
            unit="percentunit",
        ),
        thresholds((None, "green"), (_CONFIG.fallback_ratio_threshold, "orange")),
    )
    circuits = timeline(
        "Circuit state",
        "agent_circuit_state per circuit, worst pod: closed, half-open, open.",
        f"max by (circuit) (agent_circuit_state{{{SEL}}})",
        "{{circuit}}",
        CIRCUIT_MAPPINGS,
    )
    return [[(calls, 12, 8), (duration, 12, 8)], [(fallback, 12, 8), (circuits, 12, 8)]]


def cost_panels() -> list[list[tuple[object, int, int]]]:
    tokens = graph(
        "Tokens",
        "agent_llm_tokens_total per second by model and kind (input, output, cache_read, cache_write).",
        query(f"sum by (model, kind) (rate(agent_llm_tokens_total{{{SEL}}}{RATE}))", "{{model}} {{kind}}"),
    )
    cost = graph(
        "Cost per hour",
        "LLM spend rate in USD per hour, by model, and the hourly share of spec.costBudget.usdPerDay.",
        query(f"sum by (model) (rate(agent_llm_cost_usd_total{{{SEL}}}{RATE})) * 3600", "{{model}}"),
        query(f'max(shepherd_slo_cost_budget_usd{{{SEL}, period="day"}}) / 24', "daily budget / 24"),
        unit="currencyUSD",
    )
    spend_burn = with_threshold_lines(
        graph(
            "Spend burn rate",
            "shepherd:spend_burn_rate per budget period and window (1 = spending exactly the "
            "period's budget over the period). Dashed lines: the ShepherdSpendBudgetBurn thresholds "
            f"({', '.join(f'{f:g}x' for f in SPEND_FACTORS)}).",
            query(f"shepherd:spend_burn_rate{{{SEL}}}", "{{period}} {{window}}"),
        ),
        thresholds((None, "green"), *[(f, "orange" if f < 12 else "red") for f in SPEND_FACTORS]),
    )
    refused = graph(
        "Rate-limited and budget-refused requests",
        "Requests refused by the rate limits (agent_rate_limited_total) and by the token budget "
        "(agent_token_budget_exhausted_total), per second.",
        query(f"sum by (scope) (rate(agent_rate_limited_total{{{SEL}}}{RATE}))", "rate limited ({{scope}})"),
        query(
            f"sum by (scope) (rate(agent_token_budget_exhausted_total{{{SEL}}}{RATE}))",
            "budget refused ({{scope}})",
        ),
        unit="reqps",
    )
    freeze = timeline(
        "Freeze",
        f"Rollout freeze level ({FREEZE_METRIC}); changes held by a freeze show in the resource's status.",
        f"max({FREEZE_METRIC}{{{SEL}}})",
        "freeze",
        FREEZE_MAPPINGS,
    )
    return [[(tokens, 8, 8), (cost, 8, 8), (refused, 8, 8)], [(spend_burn, 12, 8), (freeze, 12, 8)]]


def freeze_annotation() -> db.AnnotationQuery:
    return (
        db.AnnotationQuery()
        .name("Freeze")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("red")
        .expr(f"max by (namespace, agentdeployment) ({FREEZE_METRIC}{{{SEL}}}) > 0")
    )


def board() -> db.Dashboard:
    dashboard = (
        db.Dashboard(TITLE)
        .tags(["shepherd", "slo"])
        .time("now-6h", "now")
        .refresh("1m")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .with_variable(datasource_variable())
        .annotation(freeze_annotation())
    )
    for variable in scope_variables(multi=False):
        dashboard = dashboard.with_variable(variable)
    return place(
        dashboard,
        [
            ("Service level", slo_panels()),
            ("Runs", run_panels()),
            ("Traffic", traffic_panels()),
            ("LLM calls", llm_panels()),
            ("Tokens, spend and freeze", cost_panels()),
        ],
    )
