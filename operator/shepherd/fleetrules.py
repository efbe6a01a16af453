"""The fleet's SLO rules: one PrometheusRule per distinct SLO window, in the operator's namespace.

The metrics contract (docs: DESIGN.md) says the ``shepherd:`` recording rules are written once for
the whole fleet, never once per AgentDeployment. So no AgentDeployment gets a PrometheusRule of its
own; instead the operator keeps one object per SLO window in use by a resource with
``spec.monitoring.prometheusRule: true``, named ``shepherd-slo-<window>`` and labelled
``shepherd.dev/slo-window=<window>``, in ``SHEPHERD_NAMESPACE`` (the chart sets it). Unset: no
fleet rules, one log line at start-up. The objects also carry the extra labels a Prometheus'
``ruleSelector`` may need (``SHEPHERD_PROMETHEUS_RULE_LABELS``, read at start-up by
``shepherd.monitoring_labels``); Shepherd's own labels win on a clash, so ``SELECTOR`` still finds them.

Object contents (``desired``, pure): the window's ``shepherd-slo-<window>`` groups, plus the
``shepherd-sli`` recording rules of the rate windows it needs that no longer window's object
already has (burn windows can coincide, e.g. 7d and 28d; each series must be recorded once), plus
the window-independent ``shepherd-llm``, ``shepherd-redis`` and ``shepherd-spend*`` groups in the
longest window's object only.

The chart ships a static PrometheusRule rendered for ``DEFAULT_SLO_WINDOWS``; when
``SHEPHERD_FLEET_RULES_FROM_CHART`` lists those windows (comma-separated), the operator skips
them, and everything the chart's copy contains (their SLI rate windows, the window-independent
groups). Without it the chart's copy and the operator's overlap for those windows.

``FleetRules.sync`` applies through the same server-side apply and field manager as the children
(no write when the live object already matches) and deletes the objects of windows no longer used.
It runs after every resync round and after any reconcile that changes the set of windows. An
absent monitoring.coreos.com CRD means nothing to do, as for the per-resource monitoring children.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from shepherd.apply import contains, stamped
from shepherd.kube import KubeClient, Outcome
from shepherd.render.common import merge_labels
from shepherd.slo.objectives import fleet_slo_windows
from shepherd.slo.rules import RuleConfig, sli_group, slo_groups, slo_windows, window_independent_groups
from shepherd.slo.windows import format_duration

log = logging.getLogger(__name__)

API_VERSION = "monitoring.coreos.com/v1"
PLURAL = "prometheusrules"
WINDOW_LABEL = "shepherd.dev/slo-window"
COMPONENT = "slo-fleet-rules"
SELECTOR = f"app.kubernetes.io/managed-by=shepherd,app.kubernetes.io/component={COMPONENT}"
CHART_WINDOWS_ENV = "SHEPHERD_FLEET_RULES_FROM_CHART"


def rule_name(window: str) -> str:
    return f"shepherd-slo-{window}"


def fleet_windows(resources: Iterable[Any]) -> list[str]:
    """Distinct SLO windows (canonical, longest first) of the resources that want SLO rules."""

    def wants(resource: Any) -> bool:
        body = resource if isinstance(resource, dict) else resource.model_dump(by_alias=True)
        monitoring = (body.get("spec") or {}).get("monitoring") or {}
        return bool(monitoring.get("prometheusRule", True))

    return fleet_slo_windows(r for r in resources if wants(r))


def desired(
    resources: Iterable[Any],
    namespace: str,
    *,
    chart_windows: Sequence[str] = (),
    config: RuleConfig | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The fleet PrometheusRules for ``resources`` (pure): one per window, longest first.

    ``labels``: extra labels on every object (Shepherd's own win on a clash).
    """
    config = config or RuleConfig()
    chart = slo_windows(chart_windows, config)
    skipped = {format_duration(ws.slo_window) for ws in chart}
    claimed: set[timedelta] = {w for ws in chart for w in ws.rate_windows}
    llm_done = bool(chart)
    out = []
    for ws in slo_windows([w for w in fleet_windows(resources) if w not in skipped], config):
        window = format_duration(ws.slo_window)
        groups = []
        sli = sli_group([ws], config)
        own = [w for w in ws.rate_windows if w not in claimed]
        if own:
            sli["rules"] = [r for r in sli["rules"] if _rate_window(r) in {format_duration(w) for w in own}]
            groups.append(sli)
            claimed.update(own)
        groups.extend(slo_groups(ws, config))
        if not llm_done:
            groups.extend(window_independent_groups(config))
            llm_done = True
        out.append(
            {
                "apiVersion": API_VERSION,
                "kind": "PrometheusRule",
                "metadata": {
                    "name": rule_name(window),
                    "namespace": namespace,
                    "labels": merge_labels(
                        {
                            "app.kubernetes.io/name": "shepherd",
                            "app.kubernetes.io/component": COMPONENT,
                            "app.kubernetes.io/managed-by": "shepherd",
                            WINDOW_LABEL: window,
                        },
                        labels or {},
                    ),
                },
                "spec": {"groups": groups},
            }
        )
    return out


def _rate_window(rule: dict[str, Any]) -> str:
    """``shepherd:sli_events:rate5m`` -> ``5m``."""
    return str(rule.get("record", "")).rsplit(":rate", 1)[-1]


class FleetRules:
    """Keeps the fleet PrometheusRules in ``namespace`` in line with the fleet's SLO windows."""

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        *,
        chart_windows: Sequence[str] = (),
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.client, self.namespace = client, namespace
        self.chart_windows = list(chart_windows)
        self.labels = dict(labels or {})
        self._synced: tuple[str, ...] | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_environment(
        cls, client: KubeClient, *, labels: Mapping[str, str] | None = None
    ) -> FleetRules | None:
        """From ``SHEPHERD_NAMESPACE`` and ``SHEPHERD_FLEET_RULES_FROM_CHART``; ``labels`` come parsed."""
        namespace = os.environ.get("SHEPHERD_NAMESPACE", "")
        if not namespace:
            log.info("SHEPHERD_NAMESPACE unset: the fleet's SLO PrometheusRules are not managed")
            return None
        chart = [w.strip() for w in os.environ.get(CHART_WINDOWS_ENV, "").split(",") if w.strip()]
        return cls(client, namespace, chart_windows=chart, labels=labels)

    async def sync(self, resources: Iterable[Any], *, force: bool = False) -> None:
        """Apply/prune; without ``force`` only when the set of windows changed since the last sync.

        Never raises: a failure is logged and retried at the next resync round.
        """
        resources = list(resources)
        windows = tuple(fleet_windows(resources))
        async with self._lock:
            if not force and windows == self._synced:
                return
            try:
                wanted = desired(
                    resources, self.namespace, chart_windows=self.chart_windows, labels=self.labels
                )
                if await self._sync(wanted):
                    self._synced = windows
            except Exception:
                log.exception("fleet SLO rules: sync failed")

    async def _sync(self, wanted: list[dict[str, Any]]) -> bool:
        got = await self.client.list(API_VERSION, PLURAL, self.namespace, SELECTOR)
        if got.outcome is Outcome.NOT_FOUND:
            return True  # no monitoring.coreos.com CRD: nothing to do
        if not got.ok:
            log.warning("fleet SLO rules: list: %s %s", got.status_code, got.message)
            return False
        live = {item["metadata"]["name"]: item for item in (got.body or {}).get("items") or []}
        names = {obj["metadata"]["name"] for obj in wanted}
        ok = True
        for name, item in live.items():
            if name in names:
                continue
            gone = await self.client.delete(
                API_VERSION, PLURAL, self.namespace, name, item["metadata"].get("uid")
            )
            if gone.ok or gone.outcome in (Outcome.NOT_FOUND, Outcome.CONFLICT):
                log.info("fleet SLO rules: deleted %s", name)
            else:
                log.warning("fleet SLO rules: delete %s: %s %s", name, gone.status_code, gone.message)
                ok = False
        for obj in map(stamped, wanted):
            name = obj["metadata"]["name"]
            if name in live and contains(live[name], obj):
                continue
            applied = await self.client.apply(obj, PLURAL)
            if applied.ok:
                log.info("fleet SLO rules: applied %s", name)
            else:
                log.warning("fleet SLO rules: apply %s: %s %s", name, applied.status_code, applied.message)
                ok = False
        return ok
