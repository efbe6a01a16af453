"""Per-resource objectives as ``shepherd_slo_*`` series, served on the operator's ``/metrics``.

The fleet-wide rules (``shepherd.slo.rules``) join on these series, so adding an AgentDeployment
adds samples here, never rules. Exported series (all gauges; the operator must be scraped with
``honor_labels: true`` so ``namespace`` stays the resource's namespace, not the operator's):

``shepherd_slo_objective{namespace, agentdeployment, sli, slo_window}``
    Target as a ratio (99.9 % -> 0.999). ``sli`` is ``availability``, ``latency`` or ``ttft``
    (the last two only when configured); ``slo_window`` is the canonical Prometheus duration
    of ``spec.slo.window`` (``1w`` -> ``7d``), the window whose rule group evaluates it.
``shepherd_slo_latency_threshold_bucket{namespace, agentdeployment, sli, le}``
    The histogram bucket used as the threshold of a ``latency``/``ttft`` objective; value is the
    bucket's upper bound in seconds. Published once per spelling of ``le`` (``1`` and ``1.0``)
    so the rules' ``and on (le)`` matches whichever one the service's histogram carries.
``shepherd_slo_min_events{namespace, agentdeployment}``
    Events a burn-rate alert's long window needs before it may fire (low-traffic guard).
``shepherd_slo_window_seconds{namespace, agentdeployment}``
    The SLO window in seconds.
``shepherd_slo_circuits_expected{namespace, agentdeployment}``
    How many model circuits (primary + distinct fallbacks, per provider) a pod has; "all open" means
    this many. Tool circuits (`tool:<name>`) are not model circuits and do not count.
``shepherd_slo_model_info{namespace, agentdeployment, provider, model, role}``
    1 per model; ``role`` is ``primary`` or ``fallback`` (joined by the fallback-rate rule).
``shepherd_slo_policy_step_percent{namespace, agentdeployment, step, action}``
    ``consumedPercent`` of each error-budget policy step (dashboards draw them as thresholds).
``shepherd_slo_cost_budget_usd{namespace, agentdeployment, period}``
    ``spec.costBudget`` in USD per ``period`` (``day``: ``usdPerDay``, ``month``: ``usdPerMonth``);
    only the periods that are set (the spend rules join on it).

Usage in the operator::

    from prometheus_client import REGISTRY
    from shepherd.slo.objectives import ObjectivesCollector

    REGISTRY.register(ObjectivesCollector(lambda: list(cache_of_agentdeployments.values())))

``source`` returns dicts as the API server sends them or ``shepherd.api.AgentDeployment`` models;
it is called at every scrape, so it must be cheap (an in-memory cache, not an API call).
``fleet_slo_windows(resources)`` gives the distinct windows to render the fleet's one rule set
(``shepherd.slo.rules.rule_groups(windows)``, ``shepherd.slo.generate.prometheus_rule(groups)``).

``threshold_bucket`` returns the note to put in status when a threshold is not a bucket boundary.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from . import buckets as service_buckets
from .windows import format_duration, parse_duration

#: Bucket boundaries of the service's histograms, generated from agent_service (``shepherd.slo.buckets``).
HTTP_LATENCY_BUCKETS: tuple[float, ...] = service_buckets.http()
#: The latency SLI is the run's duration (agent_run_duration_seconds).
RUN_DURATION_BUCKETS: tuple[float, ...] = service_buckets.latency()
TTFT_BUCKETS: tuple[float, ...] = service_buckets.ttft()
#: Events needed in a burn-rate alert's long window before it may fire (``spec.slo.minEvents``
#: overrides it): 1 failure out of 2 requests must not page.
DEFAULT_MIN_EVENTS = 20
#: Providers whose calls go through a circuit breaker (the offline stub does not); the service's
#: agent_service.llm.routes.CIRCUIT_PROVIDERS, kept in sync by a unit test.
CIRCUIT_PROVIDERS = frozenset({"anthropic", "bedrock", "vertex", "openai"})

_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "shepherd_slo_objective": (
        "SLO target as a ratio of good events.",
        ("namespace", "agentdeployment", "sli", "slo_window"),
    ),
    "shepherd_slo_latency_threshold_bucket": (
        "Histogram bucket (le) used as an SLO threshold; value in seconds.",
        ("namespace", "agentdeployment", "sli", "le"),
    ),
    "shepherd_slo_min_events": (
        "Events a burn-rate alert's long window needs before it may fire.",
        ("namespace", "agentdeployment"),
    ),
    "shepherd_slo_window_seconds": ("SLO window in seconds.", ("namespace", "agentdeployment")),
    "shepherd_slo_circuits_expected": (
        "Model circuits per pod (primary and distinct fallbacks).",
        ("namespace", "agentdeployment"),
    ),
    "shepherd_slo_model_info": (
        "Models of an AgentDeployment by role (primary, fallback).",
        ("namespace", "agentdeployment", "provider", "model", "role"),
    ),
    "shepherd_slo_policy_step_percent": (
        "consumedPercent of each error-budget policy step.",
        ("namespace", "agentdeployment", "step", "action"),
    ),
    "shepherd_slo_cost_budget_usd": (
        "LLM cost budget in USD per period (day, month).",
        ("namespace", "agentdeployment", "period"),
    ),
}


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass
class Objectives:
    """Samples for the whole fleet, plus human-readable notes per (namespace, name) for status."""

    samples: list[Sample] = field(default_factory=list)
    notes: dict[tuple[str, str], list[str]] = field(default_factory=dict)


def le_spellings(bound: float) -> tuple[str, ...]:
    """Every way a client or Prometheus version writes this ``le``: Python's ``1.0``, Go's ``1``."""
    spellings = [floatToGoString(bound)]
    if math.isfinite(bound):
        go = str(int(bound)) if bound == int(bound) else repr(bound)
        if go not in spellings:
            spellings.append(go)
    return tuple(spellings)


def threshold_bucket(
    threshold_seconds: float, buckets: Iterable[float], *, metric: str = "agent_http_request_duration_seconds"
) -> tuple[float, str | None]:
    """The bucket to measure a threshold with, and a note for status when it is not exact.

    An exact boundary (within float noise) is used as is. Otherwise the next bucket up: the SLI
    then counts requests up to that bound as good, which is lenient and said so. Above the largest
    finite bucket there is no bucket up but ``+Inf`` (every request good), so the largest finite
    bucket is used instead, which is stricter, and also said so.
    """
    finite = sorted(b for b in buckets if math.isfinite(b))
    if not finite:
        raise ValueError(f"{metric} has no finite buckets")
    for bound in finite:
        if math.isclose(bound, threshold_seconds, rel_tol=1e-9, abs_tol=1e-12):
            return bound, None
        if bound > threshold_seconds:
            return bound, (
                f"threshold {fmt_seconds(threshold_seconds)} is not a bucket boundary of {metric}; "
                f"measuring with the next bucket up, {fmt_seconds(bound)}"
            )
    largest = finite[-1]
    return largest, (
        f"threshold {fmt_seconds(threshold_seconds)} is above the largest bucket of {metric}; "
        f"measuring with the largest bucket, {fmt_seconds(largest)} (stricter than asked)"
    )


def fmt_seconds(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") + "s"


def canonical_window(window: str) -> str:
    """The ``slo_window`` label for a spec window: ``1w`` -> ``7d``, ``60m`` -> ``1h``."""
    return format_duration(parse_duration(window))


def _ratio(target: Any) -> float:
    """API targets are percent (99.9); a ratio (0.999) is accepted too."""
    value = float(target)
    ratio = round(value / 100, 12) if value > 1 else value  # 99.9 / 100 is 0.9990000000000001
    if not 0 < ratio < 1:
        raise ValueError(f"SLO target must be between 0 and 100 percent, got {target!r}")
    return ratio


def _models(spec: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(provider, model, role) of the primary model then each distinct fallback (a fallback without
    provider is at the primary's)."""
    model = spec.get("model") or {}
    seen: set[tuple[str, str]] = set()
    out = []
    entries = [(model, "primary")] + [(f, "fallback") for f in model.get("fallbacks") or []]
    for entry, role in entries:
        if isinstance(entry, str):
            entry = {"name": entry}
        name = entry.get("name")
        provider = str(entry.get("provider") or model.get("provider") or "")
        if not name or (provider, name) in seen:
            continue
        seen.add((provider, name))
        out.append((provider, str(name), role))
    return out


def _as_dict(resource: Any) -> Mapping[str, Any]:
    """A wire-form dict from a dict or a pydantic model (``shepherd.api.AgentDeployment``)."""
    if hasattr(resource, "model_dump"):
        return resource.model_dump(by_alias=True)
    return resource


def fleet_slo_windows(resources: Iterable[Any]) -> list[str]:
    """The distinct SLO windows of a fleet, canonical (``1w`` -> ``7d``), longest first.

    What ``shepherd.slo.rules.rule_groups`` needs to render one rule set for the whole fleet.
    A resource with an unparsable window is left out (its objectives are skipped with a note).
    """
    windows = set()
    for resource in resources:
        slo = (_as_dict(resource).get("spec") or {}).get("slo") or {}
        try:
            windows.add(parse_duration(canonical_window(str(slo.get("window", "30d")))))
        except ValueError:
            continue
    return [format_duration(w) for w in sorted(windows, reverse=True)]


def resource_objectives(
    resource: Mapping[str, Any] | Any,
    *,
    latency_buckets: Iterable[float] = RUN_DURATION_BUCKETS,
    ttft_buckets: Iterable[float] = TTFT_BUCKETS,
    min_events: int = DEFAULT_MIN_EVENTS,
) -> tuple[list[Sample], list[str]]:
    """Samples and status notes of one AgentDeployment (a dict as the API server returns it).

    ``spec.slo`` and ``spec.errorBudgetPolicy`` are read in their wire (camelCase) form with
    defaults already applied, e.g. ``AgentDeploymentSpec.model_validate(spec).model_dump(by_alias=True)``.
    A ``shepherd.api.AgentDeployment`` model is accepted too. Raises ValueError for an invalid
    objective.
    """
    resource = _as_dict(resource)
    meta = resource.get("metadata") or {}
    spec = resource.get("spec") or {}
    scope = {"namespace": str(meta.get("namespace", "")), "agentdeployment": str(meta.get("name", ""))}
    slo = spec.get("slo") or {}
    samples: list[Sample] = []
    notes: list[str] = []
    window = canonical_window(str(slo.get("window", "30d")))

    objectives: list[tuple[str, Mapping[str, Any], Iterable[float], str]] = []
    if slo.get("availability"):
        objectives.append(("availability", slo["availability"], (), ""))
    if slo.get("latency"):
        objectives.append(("latency", slo["latency"], latency_buckets, "agent_run_duration_seconds"))
    if slo.get("ttft"):
        objectives.append(("ttft", slo["ttft"], ttft_buckets, "agent_ttft_seconds"))
    if not objectives:
        return samples, notes

    for sli, objective, buckets, metric in objectives:
        target = _ratio(objective["target"])
        samples.append(Sample("shepherd_slo_objective", {**scope, "sli": sli, "slo_window": window}, target))
        if metric:
            bound, note = threshold_bucket(float(objective["thresholdSeconds"]), buckets, metric=metric)
            if note:
                notes.append(f"slo.{sli}: {note}")
            for le in le_spellings(bound):
                samples.append(
                    Sample("shepherd_slo_latency_threshold_bucket", {**scope, "sli": sli, "le": le}, bound)
                )

    samples.append(Sample("shepherd_slo_min_events", dict(scope), float(slo.get("minEvents") or min_events)))
    samples.append(Sample("shepherd_slo_window_seconds", dict(scope), parse_duration(window).total_seconds()))

    models = _models(spec)
    circuits = sum(1 for provider, _, _ in models if provider in CIRCUIT_PROVIDERS)
    if circuits:
        samples.append(Sample("shepherd_slo_circuits_expected", dict(scope), float(circuits)))
    for provider, model, role in models:
        labels = {**scope, "provider": provider, "model": model, "role": role}
        samples.append(Sample("shepherd_slo_model_info", labels, 1.0))

    steps = (spec.get("errorBudgetPolicy") or {}).get("steps") or []
    for index, step in enumerate(steps):
        labels = {**scope, "step": str(index), "action": str(step["action"])}
        samples.append(Sample("shepherd_slo_policy_step_percent", labels, float(step["consumedPercent"])))
    samples.extend(_cost_budget(scope, spec.get("costBudget") or {}))
    return samples, notes


def _cost_budget(scope: dict[str, str], budget: Mapping[str, Any]) -> list[Sample]:
    periods = {"day": budget.get("usdPerDay"), "month": budget.get("usdPerMonth")}
    return [
        Sample("shepherd_slo_cost_budget_usd", {**scope, "period": period}, float(usd))
        for period, usd in periods.items()
        if usd
    ]


def fleet_objectives(resources: Iterable[Mapping[str, Any] | Any], **kwargs: Any) -> Objectives:
    """Samples for every resource; an invalid one is skipped with a note instead of failing all."""
    result = Objectives()
    for resource in resources:
        resource = _as_dict(resource)
        meta = resource.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        try:
            samples, notes = resource_objectives(resource, **kwargs)
        except (KeyError, TypeError, ValueError) as error:
            result.notes[key] = [f"SLO objectives not exported: {error}"]
            continue
        result.samples.extend(samples)
        if notes:
            result.notes[key] = notes
    return result


def metric_families(objectives: Objectives) -> list[GaugeMetricFamily]:
    """The samples grouped into gauge families, every family present even when empty."""
    families = {
        name: GaugeMetricFamily(name, doc, labels=list(labels)) for name, (doc, labels) in _METRICS.items()
    }
    for sample in objectives.samples:
        _, labels = _METRICS[sample.name]
        families[sample.name].add_metric([sample.labels[k] for k in labels], sample.value)
    return list(families.values())


class ObjectivesCollector(Collector):
    """Serves ``shepherd_slo_*`` for the resources ``source()`` returns at scrape time."""

    def __init__(self, source: Callable[[], Iterable[Mapping[str, Any] | Any]], **kwargs: Any) -> None:
        self._source = source
        self._kwargs = kwargs

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from metric_families(fleet_objectives(self._source(), **self._kwargs))

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Names only, so registering does not call ``source()``.
        yield from metric_families(Objectives())
