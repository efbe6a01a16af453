"""Fleet-wide Prometheus rules for Shepherd's SLOs, circuits and the operator itself.

Pure functions returning rule groups as plain dicts (the Prometheus rule-file shape). The number
of rules depends only on the set of distinct SLO windows, never on the number of
AgentDeployments: per-resource objectives come in as ``shepherd_slo_*`` series exported by the
operator (see ``shepherd.slo.objectives``) and the rules join on them.

Groups
------
``shepherd-sli``
    For every window any rendered SLO needs and every SLI (``sli`` label: availability, latency,
    ttft) two series per AgentDeployment::

        shepherd:sli_events:rate<w>{namespace, agentdeployment, sli}   events per second
        shepherd:sli_errors:rate<w>{namespace, agentdeployment, sli}   bad events per second

    availability: all requests / 5xx responses of ``agent_http_requests_total``.
    latency, ttft: ``_count`` / ``_count`` minus the bucket at the resource's threshold. The
    threshold differs per resource while the rules are shared, so the bucket is picked with
    ``and on (namespace, agentdeployment, le) shepherd_slo_latency_threshold_bucket{sli=...}``.
    ``and`` is a set operation: no ``group_left`` cardinality errors, and the exporter may
    publish the ``le`` value in several spellings (``1`` and ``1.0``) so it matches whatever
    the client library or Prometheus version wrote.

``shepherd-slo-<window>`` (one per distinct SLO window)
    ``shepherd:slo_burn_rate{sli, window, slo_window}`` for every burn window: error ratio divided
    by the budget ``1 - shepherd_slo_objective``; restricted to resources whose objective has this
    ``slo_window``. The full-window SLI and budget (below). Then the burn-rate alerts (one name
    per SLI, four rules each from the windows table, a minimum-events guard on the long window
    from ``shepherd_slo_min_events``) and the no-data alert.

``shepherd-slo-<window>-steps`` (interval = the budget step, 5m at 30d)
    ``shepherd:slo_{errors,events}:step_rate{sli, slo_window}``: copies of the step-window rates
    of this window's resources, written once per step, so consecutive samples cover
    consecutive windows: 8640 samples per series over 30 days instead of one per evaluation.

    Back in ``shepherd-slo-<window>`` (evaluated at the normal interval, so the results never
    go stale for an instant query), the request-weighted SLI over the whole SLO window is a
    ratio of sums::

        sum_over_time(shepherd:slo_errors:step_rate[W]) / sum_over_time(shepherd:slo_events:step_rate[W])

    Each step sample is (events in the step) / step, so this is bad events / all events over W,
    not an average of ratios. Then ``shepherd:slo_error_budget_remaining:ratio``
    (``1 - ratio / (1 - target)``, negative once overspent). The budget watcher reads these
    two names and ``shepherd:slo_burn_rate`` for the whole fleet in a fixed number of queries.

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


@dataclass(frozen=True)
class SLI:
    """One service level indicator: how its events and bad events are computed."""

    name: str  # value of the ``sli`` label and of shepherd_slo_objective{sli}
    title: str  # for alert names and summaries
    what: str  # "requests that failed with a 5xx", for descriptions
    events_metric: str
    bucket_metric: str | None = None  # histogram bucket series for threshold SLIs
    error_selector: str = ""  # availability: which events are bad

    @property
    def alert(self) -> str:
        return f"Shepherd{self.title}BudgetBurn"


AVAILABILITY = SLI(
    name="availability",
    title="Availability",
    what="requests answered with a 5xx",
    events_metric="agent_http_requests_total",
    error_selector='code=~"5.."',
)
LATENCY = SLI(
    name="latency",
    title="Latency",
    what="requests slower than the latency threshold",
    events_metric="agent_http_request_duration_seconds_count",
    bucket_metric="agent_http_request_duration_seconds_bucket",
)
TTFT = SLI(
    name="ttft",
    title="TTFT",
    what="streams whose first token came later than the time-to-first-token threshold",
    events_metric="agent_ttft_seconds_count",
    bucket_metric="agent_ttft_seconds_bucket",
)
SLIS: tuple[SLI, ...] = (AVAILABILITY, LATENCY, TTFT)

# Alert names that are not per SLI.
NO_DATA_ALERT = "ShepherdSLONoData"
CIRCUIT_OPEN_ALERT = "ShepherdCircuitOpen"
ALL_CIRCUITS_OPEN_ALERT = "ShepherdAllCircuitsOpen"
FALLBACK_ALERT = "ShepherdLLMFallbackRateHigh"
OPERATOR_DOWN_ALERT = "ShepherdOperatorDown"
RECONCILE_ERRORS_ALERT = "ShepherdReconcileErrors"
PROMETHEUS_UNREACHABLE_ALERT = "ShepherdPrometheusUnreachable"


@dataclass(frozen=True)
class RuleConfig:
    """Everything about the generated rules that is a choice rather than a contract."""

    runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL
    scrape_interval: timedelta = DEFAULT_SCRAPE_INTERVAL
    #: Extra matchers on the HTTP SLI metrics (the service already leaves probes and scrapes out).
    http_selector: str = ""
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


def _sli_rules(sli: SLI, window: timedelta, config: RuleConfig) -> list[dict[str, Any]]:
    w = format_duration(window)
    http = config.http_selector if sli.events_metric.startswith("agent_http_") else ""
    events = f"sum by ({_BY}) (rate({sli.events_metric}{_selector(http)}[{w}]))"
    if sli.bucket_metric is None:
        bad = f"sum by ({_BY}) (rate({sli.events_metric}{_selector(http, sli.error_selector)}[{w}]))"
        # No 5xx series yet must read as zero errors, not as "no data".
        errors = f"{bad}\nor\n0 * {events}"
    else:
        good = (
            f"sum by ({_BY}) (\n"
            f"  rate({sli.bucket_metric}{_selector(http)}[{w}])\n"
            f"  and on ({_BY}, le)\n"
            f'  shepherd_slo_latency_threshold_bucket{{sli="{sli.name}"}}\n'
            f")"
        )
        errors = f"{events}\n-\n{good}"
    labels = {"sli": sli.name}
    return [_record(events_record(window), events, labels), _record(errors_record(window), errors, labels)]


def sli_group(windows: Iterable[SLOWindows], config: RuleConfig) -> dict[str, Any]:
    needed = sorted({w for ws in windows for w in ws.rate_windows})
    rules = [rule for w in needed for sli in SLIS for rule in _sli_rules(sli, w, config)]
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
            f"Bad events are {sli.what}."
        ),
        config=config,
        labels={"long": long, "short": short, "slo_window": slo_window, "exhaustion": exhaustion},
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
    groups.append(llm_group(config))
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
