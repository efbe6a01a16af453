"""The operator's own ``/metrics``: reconcile counters and the fleet's ``shepherd_slo_*`` objectives.

``shepherd_reconcile_total`` / ``shepherd_reconcile_errors_total`` (labels ``namespace``,
``agentdeployment``) feed the ``ShepherdReconcileErrors`` alert of ``shepherd.slo.rules``;
``shepherd_canary_aborted{namespace, agentdeployment, release}`` (1 while a canary of that release
stays aborted, see ``shepherd.rollout``) feeds ``ShepherdCanaryAborted``; the
objectives come from ``shepherd.slo.objectives.ObjectivesCollector`` over ``ResourceCache``, an
in-memory copy of every AgentDeployment the operator has seen (no API call at scrape time).
Scrape the operator with ``honor_labels: true`` so ``namespace`` stays the resource's.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import REGISTRY, Counter, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shepherd import api
from shepherd.slo.objectives import ObjectivesCollector

log = logging.getLogger(__name__)

RECONCILE_TOTAL = Counter("shepherd_reconcile", "Reconciliations attempted", ["namespace", "agentdeployment"])
RECONCILE_ERRORS = Counter(
    "shepherd_reconcile_errors", "Reconciliations that ended in an error", ["namespace", "agentdeployment"]
)


class ResourceCache:
    """The latest body (metadata and spec) of every AgentDeployment, by uid."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Any]] = {}

    def put(self, body: Mapping[str, Any]) -> None:
        meta = dict(body.get("metadata") or {})
        if meta.get("uid"):
            self._items[meta["uid"]] = {
                "apiVersion": body.get("apiVersion"),
                "kind": body.get("kind"),
                "metadata": {k: meta.get(k) for k in ("name", "namespace", "uid", "generation")},
                # The objectives need the SLO even when it comes from the platform defaults.
                "spec": api.platform_defaults().fill(body.get("spec") or {}),
                "status": {"rollout": (body.get("status") or {}).get("rollout")},
            }

    def drop(self, uid: str) -> None:
        """Forget a deleted resource, and its reconcile counters (no series left behind by churn)."""
        item = self._items.pop(uid, None)
        if item is None:
            return
        labels = (item["metadata"].get("namespace") or "", item["metadata"].get("name") or "")
        for counter in (RECONCILE_TOTAL, RECONCILE_ERRORS):
            with contextlib.suppress(KeyError):  # never reconciled by this process
                counter.remove(*labels)

    def values(self) -> list[dict[str, Any]]:
        return list(self._items.values())

    def __len__(self) -> int:
        return len(self._items)


class CanaryCollector(Collector):
    """``shepherd_canary_aborted`` from the cached ``status.rollout`` of every resource."""

    def __init__(self, items: Callable[[], list[dict[str, Any]]]) -> None:
        self.items = items

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "shepherd_canary_aborted",
            "1 while the canary of this release is aborted (status.rollout.phase Aborted)",
            labels=["namespace", "agentdeployment", "release"],
        )
        for item in self.items():
            rollout = (item.get("status") or {}).get("rollout") or {}
            if rollout.get("phase") == api.RolloutPhase.aborted:
                meta = item["metadata"]
                family.add_metric([meta["namespace"], meta["name"], str(rollout.get("release"))], 1)
        yield family


_registered: set[int] = set()


def register_objectives(cache: ResourceCache) -> None:
    """Serve ``shepherd_slo_*`` and ``shepherd_canary_aborted`` for ``cache`` (once per cache and
    process)."""
    if id(cache) in _registered:
        return
    REGISTRY.register(ObjectivesCollector(cache.values))
    REGISTRY.register(CanaryCollector(cache.values))
    _registered.add(id(cache))


def serve(port: int, address: str = "0.0.0.0") -> None:
    """Expose ``/metrics`` on ``address:port`` in a background thread; port 0 disables it."""
    if not port:
        return
    try:
        start_http_server(port, addr=address)
    except OSError as exc:  # reconciling matters more than metrics: say so loudly, keep going
        log.error("cannot serve metrics on %s:%d: %s", address, port, exc)
        return
    log.info("metrics on http://%s:%d/metrics", address, port)
