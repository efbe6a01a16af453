"""Fleet-wide Prometheus rules for Shepherd's SLOs, spend, circuits and the operator itself.

Pure functions returning rule groups as plain dicts (the Prometheus rule-file shape). The number
of rules depends only on the set of distinct SLO windows, never on the number of
AgentDeployments: per-resource objectives come in as ``shepherd_slo_*`` series exported by the
operator (see ``shepherd.slo.objectives``) and the rules join on them.

SLI events (DESIGN.md "Metrics contract") are runs and non-run API requests:

- a run is one event whatever its HTTP shape (wait, stream, background): bad when it ends
  ``error`` or ``timeout``, good when ``success`` or ``interrupted``; ``cancelled`` and
  ``refused`` runs are no events (``agent_runs_total{outcome}``);
- a request on a route that does not carry a run: 5xx bad, everything else good (so 429s from
  Shepherd's own limits and budgets are good events, as any 4xx);
- a request on a route that carries a run (``RUN_ROUTES``: creating one with POST, joining one)
  is an event only when it is answered with a 5xx: the run was refused before it was accepted
  (state store down, replica draining), so there is no run to count. Otherwise the run is the
  event, and its HTTP status (a failed run still answers 200) says nothing.

Latency is the run's duration from accepted to finished (``agent_run_duration_seconds``, queue
wait included); time to first token is ``agent_ttft_seconds``.

Groups
------
``shepherd-sli``
    For every window any rendered SLO needs and every SLI (``sli`` label: availability, latency,
    ttft) two series per AgentDeployment::

        shepherd:sli_events:rate<w>{namespace, agentdeployment, sli}   events per second
        shepherd:sli_errors:rate<w>{namespace, agentdeployment, sli}   bad events per second

    latency, ttft: ``_count`` / ``_count`` minus the bucket at the resource's threshold. The
    threshold differs per resource while the rules are shared, so the bucket is picked with
    ``and on (namespace, agentdeployment, le) shepherd_slo_latency_threshold_bucket{sli=...}``.
    ``and`` is a set operation: no ``group_left`` cardinality errors, and the exporter may
    publish the ``le`` value in several spellings (``1`` and ``1.0``) so it matches whatever
    the client library or Prometheus version wrote.

    And at each budget step window, failed runs per second by ``reason``:
    ``shepherd:run_failures:rate<step>{namespace, agentdeployment, reason}``.

``shepherd-slo-<window>`` (one per distinct SLO window)
    ``shepherd:slo_burn_rate{sli, window, slo_window}`` for every burn window: error ratio divided
    by the budget ``1 - shepherd_slo_objective``; restricted to resources whose objective has this
    ``slo_window``. The full-window SLI and budget (below). Then the burn-rate alerts (one name
    per SLI, four rules each from the windows table, a minimum-events guard on the long window
    from ``shepherd_slo_min_events``; the availability alert's description names the top failure
    reason of its long window) and the no-data alert.

``shepherd-slo-<window>-steps`` (interval = the budget step, 5m at 30d)
    ``shepherd:slo_{errors,events}:step_rate{sli, slo_window}`` and
    ``shepherd:slo_run_failures:step_rate{reason, slo_window}``: copies of the step-window rates
    of this window's resources, written once per step, so consecutive samples cover
    consecutive windows: 8640 samples per series over 30 days instead of one per evaluation.

    Back in ``shepherd-slo-<window>`` (evaluated at the normal interval, so the results never
    go stale for an instant query), the request-weighted SLI over the whole SLO window is a
    ratio of sums::

        sum_over_time(shepherd:slo_errors:step_rate[W]) / sum_over_time(shepherd:slo_events:step_rate[W])

    Each step sample is (events in the step) / step, so this is bad events / all events over W,
    not an average of ratios. Then ``shepherd:slo_error_budget_remaining:ratio``
    (``1 - ratio / (1 - target)``, negative once overspent) and
    ``shepherd:slo_run_failures:ratio{reason}``, the share of the availability events that were
    runs failed for that reason over the SLO window (they add up to the runs' part of the error
    ratio). The budget watcher reads these names and ``shepherd:slo_burn_rate`` for the whole
    fleet in a fixed number of queries.

``shepherd-spend`` and ``shepherd-spend-steps`` (independent of SLO windows)
    Spend against ``spec.costBudget`` (``shepherd_slo_cost_budget_usd{period}``, period ``day``
    or ``month``): ``shepherd:llm_cost_usd:rate<w>`` from ``agent_llm_cost_usd_total``,
    ``shepherd:spend_burn_rate{period, window}`` (spend rate times the period over the budget:
    1 spends exactly the budget in the period; a month is 30 days), the ``ShepherdSpendBudgetBurn``
    alerts from ``SPEND_BURN``, and ``shepherd:llm_cost_usd:step_increase`` (USD per budget step,
    written once per step) that the budget watcher sums since UTC midnight and since the 1st for
    ``status.spend``.

``shepherd-llm``
    Circuit breaker and model fallback alerts, independent of SLO windows.

``shepherd-operator`` (separate file, see ``operator_rule_groups``)
    The operator's own health, from metrics the operator exports (documented there).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from .windows import (
    DEFAULT_SCRAPE_INTERVAL,
    BurnRateWindow,
    Severity,
    SLOWindows,
    format_duration,
    parse_duration,
    scale_windows,
)

DEFAULT_RUNBOOK_BASE_URL = "https://github.com/shepherd-dev/shepherd/blob/main/runbooks"
#: SLO windows of the committed rule files: 30d is the SRE-workbook default and the CRD's; 7d
#: serves young services whose traffic changes too fast for a month of history to mean much.
DEFAULT_SLO_WINDOWS: tuple[str, ...] = ("30d", "7d")

SCOPE = ("namespace", "agentdeployment")
_BY = "namespace, agentdeployment"


#: Route templates (``agent_http_requests_total{route}``) of requests that carry a run: POST on
#: these creates one (thread or stateless; wait, stream, background, batch)...
RUN_CREATE_ROUTES = r"(/threads/[^/]+)?/runs(/wait|/stream|/batch)?"
#: ...and these follow one that exists (join, join the stream).
RUN_FOLLOW_ROUTES = r"/threads/[^/]+/runs/[^/]+/(join|stream)"
RUN_ROUTES = f"{RUN_CREATE_ROUTES}|{RUN_FOLLOW_ROUTES}"
#: ``agent_runs_total{outcome}`` values that are SLI events, and the bad ones among them.
RUN_EVENTS = "success|interrupted|error|timeout"
RUN_ERRORS = "error|timeout"


@dataclass(frozen=True)
class SLI:
    """One service level indicator: how its events and bad events are computed."""

    name: str  # value of the ``sli`` label and of shepherd_slo_objective{sli}
    title: str  # for alert names and summaries
    what: str  # "runs that ended in an error", for descriptions
    events_metric: str | None = None  # threshold SLIs: the histogram's _count...
    bucket_metric: str | None = None  # ...and its buckets

    @property
    def alert(self) -> str:
        return f"Shepherd{self.title}BudgetBurn"


AVAILABILITY = SLI(
    name="availability",
    title="Availability",
    what="runs that ended in an error or a timeout (whatever their HTTP status) and 5xx answers",
)
LATENCY = SLI(
    name="latency",
    title="Latency",
    what="runs slower than the latency threshold, from accepted to finished (queue wait included)",
    events_metric="agent_run_duration_seconds_count",
    bucket_metric="agent_run_duration_seconds_bucket",
)
TTFT = SLI(
    name="ttft",
    title="TTFT",
    what="streams whose first token came later than the time-to-first-token threshold",
    events_metric="agent_ttft_seconds_count",
    bucket_metric="agent_ttft_seconds_bucket",
)
SLIS: tuple[SLI, ...] = (AVAILABILITY, LATENCY, TTFT)


@dataclass(frozen=True)
class SpendBurnWindow:
    """One spend alert: the period's budget is being spent ``factor`` times faster than it lasts."""

    period: str  # "day" or "month" (shepherd_slo_cost_budget_usd{period})
    severity: Severity
    factor: float
    long: timedelta
    short: timedelta
    for_: timedelta

    def exhaustion(self) -> timedelta:
        return timedelta(seconds=round(SPEND_PERIODS[self.period].total_seconds() / self.factor))


#: Budget periods; a month is 30 days for burn rates (status uses the calendar month).
SPEND_PERIODS = {"day": timedelta(days=1), "month": timedelta(days=30)}
_DAILY = {"day": "daily", "month": "monthly"}
#: A runaway agent (a tool loop, a prompt that grew) pages; a steady overspend is a ticket.
SPEND_BURN: tuple[SpendBurnWindow, ...] = (
    SpendBurnWindow("day", "critical", 12, timedelta(hours=1), timedelta(minutes=5), timedelta(minutes=5)),
    SpendBurnWindow("day", "warning", 3, timedelta(hours=6), timedelta(minutes=30), timedelta(minutes=30)),
    SpendBurnWindow(
        "month", "critical", 12, timedelta(hours=6), timedelta(minutes=30), timedelta(minutes=15)
    ),
    SpendBurnWindow("month", "warning", 2, timedelta(days=3), timedelta(hours=6), timedelta(hours=1)),
)

# Alert names that are not per SLI.
NO_DATA_ALERT = "ShepherdSLONoData"
SPEND_ALERT = "ShepherdSpendBudgetBurn"
CIRCUIT_OPEN_ALERT = "ShepherdCircuitOpen"
ALL_CIRCUITS_OPEN_ALERT = "ShepherdAllCircuitsOpen"
FALLBACK_ALERT = "ShepherdLLMFallbackRateHigh"
OPERATOR_DOWN_ALERT = "ShepherdOperatorDown"
RECONCILE_ERRORS_ALERT = "ShepherdReconcileErrors"
PROMETHEUS_UNREACHABLE_ALERT = "ShepherdPrometheusUnreachable"
REDIS_MEMORY_ALERT = "ShepherdRedisMemoryHigh"


@dataclass(frozen=True)
class RuleConfig:
    """Everything about the generated rules that is a choice rather than a contract."""

    runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL
    scrape_interval: timedelta = DEFAULT_SCRAPE_INTERVAL
    #: Extra matchers on the HTTP SLI metrics (the service already leaves probes and scrapes out).
    http_selector: str = ""
    #: Spend burn-rate alerts, and the resolution of status.spend (``...:step_increase``).
    spend_burn: tuple[SpendBurnWindow, ...] = SPEND_BURN
    spend_step: timedelta = timedelta(minutes=5)
    #: ShepherdCircuitOpen: a circuit not closed (open or half-open) for this long.
    circuit_open_for: timedelta = timedelta(minutes=5)
    #: ShepherdAllCircuitsOpen: every circuit of a pod not closed for this long.
    all_circuits_open_for: timedelta = timedelta(minutes=1)
    #: ShepherdLLMFallbackRateHigh: share of successful LLM calls served by a fallback model.
    fallback_ratio_threshold: float = 0.10
    fallback_window: timedelta = timedelta(minutes=10)
    fallback_for: timedelta = timedelta(minutes=10)
    #: Operator self-monitoring.
    operator_selector: str = 'job="shepherd-operator"'
    operator_down_for: timedelta = timedelta(minutes=5)
    reconcile_error_ratio_threshold: float = 0.10
    reconcile_window: timedelta = timedelta(minutes=10)
    reconcile_errors_for: timedelta = timedelta(minutes=15)
    prometheus_unreachable_for: timedelta = timedelta(minutes=5)
    #: ShepherdRedisMemoryHigh: the managed Redis' used memory over its maxmemory (noeviction).
    redis_memory_ratio_threshold: float = 0.80
    redis_memory_for: timedelta = timedelta(minutes=10)
    #: Rule-group evaluation interval; None keeps Prometheus' global evaluation_interval.
    evaluation_interval: timedelta | None = None
    extra_labels: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Small helpers: one place for runbook URLs, numbers and durations in text.
# --------------------------------------------------------------------------------------------


def runbook_url(alert: str, base_url: str = DEFAULT_RUNBOOK_BASE_URL) -> str:
    """The runbook of an alert: ``<base>/<AlertName>.md`` (the file in ``runbooks/``)."""
    return f"{base_url.rstrip('/')}/{alert}.md"


def fmt_number(value: float) -> str:
    """Render a threshold with fixed precision (at most 6 decimals, no float noise)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def fmt_percent(ratio: float) -> str:
    return f"{fmt_number(ratio * 100)}%"


def _alert(
    name: str,
    *,
    expr: str,
    for_: timedelta,
    severity: str,
    summary: str,
    description: str,
    config: RuleConfig,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": format_duration(for_),
        "labels": {"severity": severity, **(labels or {}), **config.extra_labels},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": runbook_url(name, config.runbook_base_url),
        },
    }


def _record(name: str, expr: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"record": name, "expr": expr}
    if labels:
        rule["labels"] = labels
    return rule


def _group(name: str, rules: list[dict[str, Any]], interval: timedelta | None) -> dict[str, Any]:
    group: dict[str, Any] = {"name": name}
    if interval is not None:
        group["interval"] = format_duration(interval)
    group["rules"] = rules
    return group


def _selector(*matchers: str) -> str:
    inner = ", ".join(m for m in matchers if m)
    return f"{{{inner}}}" if inner else ""


def _where(resource: str) -> str:
    return "{{ $labels.namespace }}/{{ $labels.agentdeployment }}" + resource


# --------------------------------------------------------------------------------------------
# SLI recording rules (shared by every SLO window)
# --------------------------------------------------------------------------------------------


def events_record(window: timedelta) -> str:
    return f"shepherd:sli_events:rate{format_duration(window)}"


def errors_record(window: timedelta) -> str:
    return f"shepherd:sli_errors:rate{format_duration(window)}"


def run_failures_record(window: timedelta) -> str:
    return f"shepherd:run_failures:rate{format_duration(window)}"


def availability_exprs(window: str, *, matchers: str = "", http_selector: str = "") -> tuple[str, str]:
    """Availability events and bad events per second over ``window`` (a PromQL duration, or a
    Grafana variable such as ``$__rate_interval``), summed by (namespace, agentdeployment). A
    resource without bad series has no bad-events result: callers add ``or 0 * <events>``.

    ``matchers`` go on every series (a board's variables), ``http_selector`` on the HTTP ones only.
    Which series are events: see the module docstring.
    """

    def http(*extra: str) -> str:
        return f"agent_http_requests_total{_selector(matchers, http_selector, *extra)}"

    def runs(outcomes: str) -> str:
        outcome = f'outcome=~"{outcomes}"'
        return f"agent_runs_total{_selector(matchers, outcome)}"

    five = 'code=~"5.."'
    events = [
        http(f'route!~"{RUN_ROUTES}"'),
        http(f'route=~"{RUN_CREATE_ROUTES}"', 'method!="POST"', 'code!~"5.."'),
        http(f'route=~"{RUN_ROUTES}"', five),
        runs(RUN_EVENTS),
    ]
    bad = [http(five), runs(RUN_ERRORS)]

    def total(selectors: list[str]) -> str:
        # The selectors pick disjoint series (rate() drops the metric name, the labels differ):
        # ``or`` is their union, summed once.
        union = "\n  or\n  ".join(f"rate({selector}[{window}])" for selector in selectors)
        return f"sum by ({_BY}) (\n  {union}\n)"

    return total(events), total(bad)


def _threshold(sli: SLI, window: timedelta) -> tuple[str, str]:
    w = format_duration(window)
    events = f"sum by ({_BY}) (rate({sli.events_metric}[{w}]))"
    good = (
        f"sum by ({_BY}) (\n"
        f"  rate({sli.bucket_metric}[{w}])\n"
        f"  and on ({_BY}, le)\n"
        f'  shepherd_slo_latency_threshold_bucket{{sli="{sli.name}"}}\n'
        f")"
    )
    return events, f"{events}\n-\n{good}"


def _sli_rules(sli: SLI, window: timedelta, config: RuleConfig) -> list[dict[str, Any]]:
    if sli is AVAILABILITY:
        events, bad = availability_exprs(format_duration(window), http_selector=config.http_selector)
        # No bad series yet must read as zero errors, not as "no data". The events were recorded
        # by the rule before this one: rules of a group run in order and see earlier results.
        errors = f'{bad}\nor\n0 * sum by ({_BY}) ({events_record(window)}{{sli="{sli.name}"}})'
    else:
        events, errors = _threshold(sli, window)
    labels = {"sli": sli.name}
    return [_record(events_record(window), events, labels), _record(errors_record(window), errors, labels)]


def _run_failures_rule(window: timedelta) -> dict[str, Any]:
    w = format_duration(window)
    expr = f'sum by ({_BY}, reason) (rate(agent_runs_total{{outcome=~"{RUN_ERRORS}"}}[{w}]))'
    return _record(run_failures_record(window), expr)


def sli_group(windows: Iterable[SLOWindows], config: RuleConfig) -> dict[str, Any]:
    windows = list(windows)
    needed = sorted({w for ws in windows for w in ws.rate_windows})
    rules = [rule for w in needed for sli in SLIS for rule in _sli_rules(sli, w, config)]
    rules += [_run_failures_rule(w) for w in sorted({ws.budget_step for ws in windows})]
    return _group("shepherd-sli", rules, config.evaluation_interval)


# --------------------------------------------------------------------------------------------
# Per SLO window: burn rates, burn-rate alerts, no-data alert, full-window budget
# --------------------------------------------------------------------------------------------


def _objective(slo_window: str) -> str:
    """The per-resource target, one series per (namespace, agentdeployment, sli).

    ``max by`` drops the scrape's own labels (instance, job, pod) so two operator replicas
    serving the same objectives do not break the joins.
    """
    return f'max by ({_BY}, sli) (shepherd_slo_objective{{slo_window="{slo_window}"}})'


def _burn_rate_rule(window: timedelta, slo_window: str) -> dict[str, Any]:
    expr = (
        f"(\n  {errors_record(window)}\n  / on ({_BY}, sli)\n  {events_record(window)}\n)\n"
        f"/ on ({_BY}, sli)\n"
        f"(1 - {_objective(slo_window)})"
    )
    return _record(
        "shepherd:slo_burn_rate", expr, {"window": format_duration(window), "slo_window": slo_window}
    )


def _burn(sli: SLI, slo_window: str, window: timedelta, factor: float) -> str:
    return (
        f'shepherd:slo_burn_rate{{sli="{sli.name}", slo_window="{slo_window}", '
        f'window="{format_duration(window)}"}} > {fmt_number(factor)}'
    )


def _burn_alert(sli: SLI, ws: SLOWindows, row: BurnRateWindow, config: RuleConfig) -> dict[str, Any]:
    slo_window = format_duration(ws.slo_window)
    long, short = format_duration(row.long), format_duration(row.short)
    seconds = fmt_number(row.long.total_seconds())
    expr = (
        f"(\n  {_burn(sli, slo_window, row.long, row.factor)}\n"
        f"  and on ({_BY}, sli)\n"
        f"  {_burn(sli, slo_window, row.short, row.factor)}\n)\n"
        f"and on ({_BY}, sli)\n"
        f"(\n"
        f'  {events_record(row.long)}{{sli="{sli.name}"}} * {seconds}\n'
        f"  >= on ({_BY}) group_left ()\n"
        f"  max by ({_BY}) (shepherd_slo_min_events)\n"
        f")"
    )
    exhaustion = format_duration(row.exhaustion(ws.slo_window))
    speed = "fast" if row.severity == "critical" else "steadily"
    return _alert(
        sli.alert,
        expr=expr,
        for_=row.for_,
        severity=row.severity,
        summary=f"{sli.title} error budget is burning {speed}.",
        description=(
            f"{_where('')} is burning its {sli.name} error budget "
            f'{{{{ printf "%.1f" $value }}}}x faster than sustainable over the last {long} '
            f"(and still over the last {short}); the threshold is {fmt_number(row.factor)}x of a "
            f"{slo_window} SLO, at which the whole budget is gone in {exhaustion}. "
            f"Bad events are {sli.what}.{_top_reason(long) if sli is AVAILABILITY else ''}"
        ),
        config=config,
        labels={"long": long, "short": short, "slo_window": slo_window, "exhaustion": exhaustion},
    )


def _top_reason(window: str) -> str:
    """Template text naming the most frequent failure reason of the alert's resource over ``window``
    (nothing when no run failed: the budget burns from 5xx only)."""
    failures = (
        "topk(1, sum by (reason) (increase(agent_runs_total{namespace=%q, agentdeployment=%q, "
        f'outcome=~"{RUN_ERRORS}"}}[{window}])))'
    )
    return (
        f"{{{{ range printf `{failures}` $labels.namespace $labels.agentdeployment | query }}}}"
        f" Top failure reason over the last {window}: {{{{ .Labels.reason }}}} "
        f'({{{{ .Value | printf "%.0f" }}}} failed runs).{{{{ end }}}}'
    )


def _no_data_alert(ws: SLOWindows, config: RuleConfig) -> dict[str, Any]:
    slo_window = format_duration(ws.slo_window)
    expr = f"{_objective(slo_window)}\nunless on ({_BY}, sli)\n{events_record(ws.no_data_window)}"
    window = format_duration(ws.no_data_window + ws.no_data_for)
    return _alert(
        NO_DATA_ALERT,
        expr=expr,
        for_=ws.no_data_for,
        severity="warning",
        summary=f"An SLO has had no SLI data for {window}.",
        description=(
            f"{_where('')} has an SLO on {{{{ $labels.sli }}}} ({slo_window} window, target "
            f'{{{{ printf "%.4g" $value }}}}) but Prometheus has had no {{{{ $labels.sli }}}} series '
            f"for it for {window}: its error budget is not being measured and cannot freeze or page."
        ),
        config=config,
        labels={"slo_window": slo_window},
    )


def slo_groups(ws: SLOWindows, config: RuleConfig) -> list[dict[str, Any]]:
    slo_window = format_duration(ws.slo_window)
    window_label = {"slo_window": slo_window}
    # Step series: the step-window rates of this window's resources, evaluated once per step so
    # that consecutive samples cover consecutive, non-overlapping windows (8640 per 30 days).
    steps = [
        _record(
            f"shepherd:slo_{kind}:step_rate",
            f"{record(ws.budget_step)}\nand on ({_BY}, sli)\n"
            f'shepherd_slo_objective{{slo_window="{slo_window}"}}',
            window_label,
        )
        for kind, record in (("errors", errors_record), ("events", events_record))
    ]
    steps.append(
        _record(
            "shepherd:slo_run_failures:step_rate",
            f"{run_failures_record(ws.budget_step)}\nand on ({_BY})\n"
            f'shepherd_slo_objective{{sli="availability", slo_window="{slo_window}"}}',
            window_label,
        )
    )
    burn_rules = [_burn_rate_rule(w, slo_window) for w in ws.burn_windows]
    ratio = (
        f'sum_over_time(shepherd:slo_errors:step_rate{{slo_window="{slo_window}"}}[{slo_window}])\n'
        f"/ on ({_BY}, sli)\n"
        f'sum_over_time(shepherd:slo_events:step_rate{{slo_window="{slo_window}"}}[{slo_window}])'
    )
    remaining = (
        f'1 - shepherd:slo_error_ratio{{slo_window="{slo_window}"}}\n'
        f"/ on ({_BY}, sli)\n"
        f"(1 - {_objective(slo_window)})"
    )
    budget = [
        _record("shepherd:slo_error_ratio", ratio, window_label),
        _record("shepherd:slo_error_budget_remaining:ratio", remaining, window_label),
        _record(
            "shepherd:slo_run_failures:ratio",
            f'sum_over_time(shepherd:slo_run_failures:step_rate{{slo_window="{slo_window}"}}[{slo_window}])\n'
            f"/ on ({_BY}) group_left ()\n"
            f'sum_over_time(shepherd:slo_events:step_rate{{sli="availability", slo_window="{slo_window}"}}'
            f"[{slo_window}])",
            window_label,
        ),
    ]
    alerts = [_burn_alert(sli, ws, row, config) for sli in SLIS for row in ws.burn]
    alerts.append(_no_data_alert(ws, config))
    interval = config.evaluation_interval
    step_interval = max(ws.budget_step, interval) if interval else ws.budget_step
    return [
        _group(f"shepherd-slo-{slo_window}", burn_rules + budget + alerts, interval),
        _group(f"shepherd-slo-{slo_window}-steps", steps, step_interval),
    ]


# --------------------------------------------------------------------------------------------
# Circuits and fallbacks
# --------------------------------------------------------------------------------------------


def llm_group(config: RuleConfig) -> dict[str, Any]:
    w = format_duration(config.fallback_window)
    success = f'rate(agent_llm_requests_total{{outcome="success"}}[{w}])'
    total = f"sum by ({_BY}) ({success})"
    fallback = (
        f"sum by ({_BY}) (\n"
        f"  {success}\n"
        f"  and on ({_BY}, provider, model)\n"
        f'  shepherd_slo_model_info{{role="fallback"}}\n'
        f")"
    )
    ratio_name = f"shepherd:agent_llm_fallback:ratio_rate{w}"
    ratio = f"(\n{textwrap.indent(fallback, '  ')}\n  or\n  0 * {total}\n)\n/\n{total}"
    threshold = config.fallback_ratio_threshold
    seconds = fmt_number(config.fallback_window.total_seconds())
    fallback_expr = (
        f"{ratio_name} > {fmt_number(threshold)}\n"
        f"and on ({_BY})\n"
        f"(\n"
        f"  {total} * {seconds}\n"
        f"  >= on ({_BY}) group_left ()\n"
        f"  max by ({_BY}) (shepherd_slo_min_events)\n"
        f")"
    )
    open_for = format_duration(config.circuit_open_for)
    # A circuit is named provider:model, or tool:<tool> for a wrapped tool; an idle open one (a
    # fallback no request needs since the primary recovered) keeps its gauge until its next call, so
    # it must still be refusing or failing calls to count.
    unanswered = f'increase(agent_llm_requests_total{{outcome!="success"}}[{open_for}])'
    tool_failures = f'increase(agent_tool_calls_total{{outcome!="success"}}[{open_for}])'
    all_for = format_duration(config.all_circuits_open_for)
    rules = [
        _record(ratio_name, ratio),
        _alert(
            CIRCUIT_OPEN_ALERT,
            expr=(
                f"max by ({_BY}, circuit) (agent_circuit_state) > 0\n"
                f"and on ({_BY}, circuit)\n"
                f"(\n"
                f"  label_join(\n"
                f"    sum by ({_BY}, provider, model) ({unanswered}) > 0,\n"
                f'    "circuit", ":", "provider", "model"\n  )\n'
                f"  or\n"
                f"  label_replace(\n"
                f"    sum by ({_BY}, tool) ({tool_failures}) > 0,\n"
                f'    "circuit", "tool:$1", "tool", "(.*)"\n  )\n'
                f")"
            ),
            for_=config.circuit_open_for,
            severity="warning",
            summary=f"A circuit breaker has not closed for {open_for}.",
            description=(
                f"Circuit {{{{ $labels.circuit }}}} of {_where('')} has been open or half-open "
                f"(state {{{{ $value }}}}: 1 half-open, 2 open) for more than {open_for} in at least "
                f"one pod, and calls to it were still refused or failing in the last {open_for}; model "
                f"calls fail fast or go to a fallback model, tool calls fail fast."
            ),
            config=config,
        ),
        _alert(
            ALL_CIRCUITS_OPEN_ALERT,
            expr=(
                f"count by ({_BY}) (\n"
                f'  count by ({_BY}, instance) (agent_circuit_state{{circuit!~"tool:.*"}} > 0)\n'
                f"  >= on ({_BY}) group_left ()\n"
                f"  max by ({_BY}) (shepherd_slo_circuits_expected)\n"
                f")"
            ),
            for_=config.all_circuits_open_for,
            severity="critical",
            summary=f"Every model circuit of a pod has been open for {all_for}.",
            description=(
                f"In {{{{ $value }}}} pod(s) of {_where('')} the circuits of the primary model and of "
                f"every fallback model have all been open or half-open for {all_for}: LLM calls "
                f"cannot succeed there."
            ),
            config=config,
        ),
        _alert(
            FALLBACK_ALERT,
            expr=fallback_expr,
            for_=config.fallback_for,
            severity="warning",
            summary=f"More than {fmt_percent(threshold)} of LLM answers come from fallback models.",
            description=(
                f"{{{{ $value | humanizePercentage }}}} of the successful LLM calls of {_where('')} "
                f"over the last {w} were served by a fallback model (threshold {fmt_percent(threshold)}); "
                f"the primary model is failing, slow or rate limited."
            ),
            config=config,
        ),
    ]
    return _group("shepherd-llm", rules, config.evaluation_interval)


# --------------------------------------------------------------------------------------------
# The managed Redis (redis_exporter metrics, scraped by the PodMonitor's ``metrics`` endpoint)
# --------------------------------------------------------------------------------------------


def redis_group(config: RuleConfig) -> dict[str, Any]:
    ratio = config.redis_memory_ratio_threshold
    for_ = format_duration(config.redis_memory_for)
    rules = [
        _alert(
            REDIS_MEMORY_ALERT,
            expr=(
                f"max by ({_BY}) (redis_memory_used_bytes)\n"
                f"/\n"
                f"max by ({_BY}) (redis_memory_max_bytes > 0)\n"
                f"> {fmt_number(ratio)}"
            ),
            for_=config.redis_memory_for,
            severity="warning",
            summary=f"A managed Redis has used more than {fmt_percent(ratio)} of its maxmemory for {for_}.",
            description=(
                f"The managed Redis of {_where('')} holds {{{{ $value | humanizePercentage }}}} of its "
                f"maxmemory (threshold {fmt_percent(ratio)}). It runs with noeviction: when full it "
                f"refuses writes, and new threads, runs and checkpoints fail with 503."
            ),
            config=config,
        )
    ]
    return _group("shepherd-redis", rules, config.evaluation_interval)


# Spend against spec.costBudget
# --------------------------------------------------------------------------------------------


def spend_rate_record(window: timedelta) -> str:
    return f"shepherd:llm_cost_usd:rate{format_duration(window)}"


SPEND_STEP_RECORD = "shepherd:llm_cost_usd:step_increase"


def _cost_budget(period: str) -> str:
    return f'max by ({_BY}) (shepherd_slo_cost_budget_usd{{period="{period}"}})'


def _spend_burn(period: str, window: timedelta, factor: float) -> str:
    return (
        f'shepherd:spend_burn_rate{{period="{period}", window="{format_duration(window)}"}} '
        f"> {fmt_number(factor)}"
    )


def _spend_alert(row: SpendBurnWindow, config: RuleConfig) -> dict[str, Any]:
    long, short = format_duration(row.long), format_duration(row.short)
    exhaustion = format_duration(row.exhaustion())
    budget = f'max(shepherd_slo_cost_budget_usd{{namespace=%q, agentdeployment=%q, period="{row.period}"}})'
    amount = (
        f"{{{{ range printf `{budget}` $labels.namespace $labels.agentdeployment | query }}}}"
        f' of {{{{ .Value | printf "%.2f" }}}} USD{{{{ end }}}}'
    )
    speed = "fast" if row.severity == "critical" else "steadily"
    return _alert(
        SPEND_ALERT,
        expr=(
            f"{_spend_burn(row.period, row.long, row.factor)}\n"
            f"and on ({_BY})\n"
            f"{_spend_burn(row.period, row.short, row.factor)}"
        ),
        for_=row.for_,
        severity=row.severity,
        summary=f"LLM spend is burning through a cost budget {speed}.",
        description=(
            f"{_where('')} is spending its {_DAILY[row.period]} LLM budget{amount} "
            f'{{{{ printf "%.1f" $value }}}}x faster than it lasts over the last {long} (and still '
            f"over the last {short}); the threshold is {fmt_number(row.factor)}x, at which the "
            f"{row.period}'s budget is gone in {exhaustion}. With spec.costBudget.enforce new runs "
            f"are refused (429) once it is gone."
        ),
        config=config,
        labels={"period": row.period, "long": long, "short": short, "exhaustion": exhaustion},
    )


def spend_groups(config: RuleConfig) -> list[dict[str, Any]]:
    rows = config.spend_burn
    windows = sorted({w for row in rows for w in (row.long, row.short)})
    rates = [
        _record(
            spend_rate_record(w), f"sum by ({_BY}) (rate(agent_llm_cost_usd_total[{format_duration(w)}]))"
        )
        for w in windows
    ]
    burns = [
        _record(
            "shepherd:spend_burn_rate",
            f"{spend_rate_record(w)} * {fmt_number(SPEND_PERIODS[period].total_seconds())}\n"
            f"/ on ({_BY})\n{_cost_budget(period)}",
            {"period": period, "window": format_duration(w)},
        )
        for period, w in sorted({(row.period, w) for row in rows for w in (row.long, row.short)})
    ]
    alerts = [_spend_alert(row, config) for row in rows]
    step = config.spend_step
    increase = _record(
        SPEND_STEP_RECORD,
        f"sum by ({_BY}) (increase(agent_llm_cost_usd_total[{format_duration(step)}]))",
    )
    interval = config.evaluation_interval
    return [
        _group("shepherd-spend", rates + burns + alerts, interval),
        _group("shepherd-spend-steps", [increase], max(step, interval) if interval else step),
    ]


def window_independent_groups(config: RuleConfig) -> list[dict[str, Any]]:
    """Circuits, fallbacks, the managed Redis and spend: the same whatever SLO windows the fleet
    uses, so written once for the fleet."""
    return [llm_group(config), redis_group(config), *spend_groups(config)]


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def slo_windows(slo_windows: Iterable[str | timedelta], config: RuleConfig) -> list[SLOWindows]:
    """Distinct SLO windows, longest first, each scaled (see ``shepherd.slo.windows``)."""
    distinct = {parse_duration(w) if isinstance(w, str) else w for w in slo_windows}
    return [scale_windows(w, scrape_interval=config.scrape_interval) for w in sorted(distinct, reverse=True)]


def rule_groups(
    slo_windows_: Iterable[str | timedelta] = DEFAULT_SLO_WINDOWS, config: RuleConfig | None = None
) -> list[dict[str, Any]]:
    """All service rule groups for a set of distinct SLO windows (e.g. those found in the fleet).

    The result depends on the windows only, never on how many AgentDeployments use them.
    """
    config = config or RuleConfig()
    scaled = slo_windows(slo_windows_, config)
    groups = [sli_group(scaled, config)]
    for ws in scaled:
        groups.extend(slo_groups(ws, config))
    groups.extend(window_independent_groups(config))
    return groups


def operator_rule_groups(config: RuleConfig | None = None) -> list[dict[str, Any]]:
    """The operator's own alerts.

    Metrics the operator exports on its ``/metrics`` (scraped with ``honor_labels: true`` so
    ``namespace`` stays the resource's):

    - ``up{job="shepherd-operator"}`` (from the scrape itself);
    - ``shepherd_reconcile_total{namespace, agentdeployment}`` counter: reconciliations attempted;
    - ``shepherd_reconcile_errors_total{namespace, agentdeployment}`` counter: reconciliations that
      ended in an error (temporary or permanent);
    - ``shepherd_prometheus_up`` gauge: 1 when the budget watcher's last query set succeeded,
      0 when Prometheus was unreachable or returned an error.
    """
    config = config or RuleConfig()
    op = config.operator_selector
    down_for = format_duration(config.operator_down_for)
    rw = format_duration(config.reconcile_window)
    ratio = config.reconcile_error_ratio_threshold
    unreachable_for = format_duration(config.prometheus_unreachable_for)
    rules = [
        _alert(
            OPERATOR_DOWN_ALERT,
            expr=f"absent(up{{{op}}} == 1)",
            for_=config.operator_down_for,
            severity="critical",
            summary=f"The Shepherd operator has been down for {down_for}.",
            description=(
                f"No Shepherd operator target ({op}) has been up for {down_for}: no reconciles, "
                f"no budget evaluation, and the shepherd_slo_* objective series go stale, which "
                f"silences every SLO alert of the fleet."
            ),
            config=config,
        ),
        _alert(
            RECONCILE_ERRORS_ALERT,
            expr=(
                f"sum by ({_BY}) (rate(shepherd_reconcile_errors_total{{{op}}}[{rw}]))\n"
                f"/\n"
                f"sum by ({_BY}) (rate(shepherd_reconcile_total{{{op}}}[{rw}]))\n"
                f"> {fmt_number(ratio)}"
            ),
            for_=config.reconcile_errors_for,
            severity="warning",
            summary=f"More than {fmt_percent(ratio)} of an AgentDeployment's reconciles fail.",
            description=(
                f"{{{{ $value | humanizePercentage }}}} of the reconciles of {_where('')} over the "
                f"last {rw} ended in an error (threshold {fmt_percent(ratio)}): its children may "
                f"not match its spec."
            ),
            config=config,
        ),
        _alert(
            PROMETHEUS_UNREACHABLE_ALERT,
            expr=f"max by (namespace) (shepherd_prometheus_up{{{op}}}) == 0",
            for_=config.prometheus_unreachable_for,
            severity="warning",
            summary=f"The Shepherd operator has not reached Prometheus for {unreachable_for}.",
            description=(
                f"The budget watcher of the Shepherd operator in namespace {{{{ $labels.namespace }}}} "
                f"has failed to query Prometheus for {unreachable_for}: error budgets are not "
                f"evaluated, existing freezes stay and no new freeze can start."
            ),
            config=config,
        ),
    ]
    return [_group("shepherd-operator", rules, config.evaluation_interval)]


def all_alert_names(config: RuleConfig | None = None) -> list[str]:
    """Every alert name Shepherd ships (service and operator rules), sorted."""
    groups = rule_groups(config=config) + operator_rule_groups(config)
    return sorted({r["alert"] for g in groups for r in g["rules"] if "alert" in r})
