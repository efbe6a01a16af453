"""Monitoring children: a PodMonitor and a Grafana dashboard ConfigMap.

There is no per-resource PrometheusRule: the SLO rules are written once for the whole fleet, one
PrometheusRule per distinct SLO window (``shepherd.fleetrules``), so ``spec.monitoring.prometheusRule``
only says whether this resource's window is counted there. A per-resource PrometheusRule left by an
older operator version is pruned (the kind stays in ``CHILD_KINDS``).

Dashboard *content* arrives as a ``MonitoringContent`` argument so this module stays pure;
``dashboard_content`` is the default provider: the generated per-deployment board (package data,
``data/agentdeployment-dashboard.json``, written by ``python -m dashboards.build``) with its
``namespace``/``agentdeployment`` variables preset to the resource.

Extra labels for the PodMonitor (a Prometheus' ``podMonitorSelector``, e.g. ``release: <name>``)
arrive the same way, as a ``MonitoringLabels`` argument (read from the environment once, at
start-up, by ``shepherd.monitoring_labels``); Shepherd's own labels win on a clash.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from shepherd.api import AgentDeployment
from shepherd.render.common import OWNER_LABEL, agent_name, dashboard_name, merge_labels, metadata

MONITORING_COMPONENT = "monitoring"
#: Label Prometheus adds to every scraped series of this resource (the metrics contract).
AGENTDEPLOYMENT_LABEL = "agentdeployment"
#: The Prometheus label of a Pod's shepherd.dev/release.
RELEASE_LABEL = "release"
DASHBOARD_LABEL = "grafana_dashboard"


@dataclass(frozen=True)
class MonitoringContent:
    """What the SLO code provides for one resource.

    ``dashboard_json`` is a Grafana dashboard model as JSON text. ``rule_groups`` is unused by
    the renderer (rules are fleet-wide, see ``shepherd.fleetrules``); kept for providers.
    """

    rule_groups: list[dict[str, Any]] = field(default_factory=list)
    dashboard_json: str = ""


@dataclass(frozen=True)
class MonitoringLabels:
    """Operator-wide extra labels for monitoring objects, so a Prometheus selecting on labels loads them.

    ``prometheus_rule`` goes on the fleet PrometheusRules (``shepherd.fleetrules``), ``pod_monitor``
    on every AgentDeployment's PodMonitor. Empty (the default): the objects carry Shepherd's labels only.
    """

    prometheus_rule: Mapping[str, str] = field(default_factory=dict)
    pod_monitor: Mapping[str, str] = field(default_factory=dict)


NO_LABELS = MonitoringLabels()

BOARD_RESOURCE = "data/agentdeployment-dashboard.json"


@functools.cache
def board_template() -> dict[str, Any]:
    """The generated per-deployment board (package data of ``shepherd``)."""
    return json.loads((resources.files("shepherd") / BOARD_RESOURCE).read_text(encoding="utf-8"))


def dashboard_uid(namespace: str, name: str) -> str:
    """Stable per resource (survives re-creation), 32 characters (Grafana allows 40)."""
    return hashlib.md5(f"{namespace}/{name}".encode()).hexdigest()


def preset_board(board: dict[str, Any], namespace: str, name: str) -> dict[str, Any]:
    """A copy of ``board`` for one resource: uid, title, and its template variables preset."""
    out = copy.deepcopy(board)
    out["uid"] = dashboard_uid(namespace, name)
    out["title"] = f"Shepherd / {namespace}/{name}"
    out.pop("id", None)
    values = {"namespace": namespace, "agentdeployment": name}
    for variable in (out.get("templating") or {}).get("list") or []:
        value = values.get(variable.get("name"))
        if value is None:
            continue
        option = {"selected": True, "text": value, "value": value}
        variable["current"] = dict(option)
        variable["options"] = [dict(option)]
    return out


def dashboard_content(resource: AgentDeployment) -> MonitoringContent:
    """Default content provider: the real per-deployment board, preset to ``resource``.

    Nothing when the resource wants no dashboard: the board is copied and serialised on every
    reconcile otherwise, for a ConfigMap that is never rendered.
    """
    if not resource.spec.monitoring.dashboard:
        return MonitoringContent()
    board = preset_board(board_template(), resource.namespace, resource.name)
    return MonitoringContent(dashboard_json=json.dumps(board, sort_keys=True))


def placeholder_content(resource: AgentDeployment) -> MonitoringContent:
    """Cheap content for callers that only need the workload (webhook, benchmarks): an empty board."""
    board = {
        "title": f"{resource.namespace}/{resource.name} SLO",
        "uid": dashboard_uid(resource.namespace, resource.name),
        "schemaVersion": 39,
        "panels": [],
        "tags": ["shepherd"],
    }
    return MonitoringContent(dashboard_json=json.dumps(board, sort_keys=True))


def pod_monitor(resource: AgentDeployment, labels: MonitoringLabels = NO_LABELS) -> dict[str, Any]:
    """Scrapes the agent (port ``http``) and the redis_exporter (port ``metrics``) of this resource."""
    interval = resource.spec.monitoring.scrape_interval
    meta = metadata(resource, agent_name(resource), MONITORING_COMPONENT)
    meta["labels"] = merge_labels(meta["labels"], labels.pod_monitor)
    relabelings = [
        {
            "action": "replace",
            "sourceLabels": ["__meta_kubernetes_pod_label_shepherd_dev_agentdeployment"],
            "targetLabel": AGENTDEPLOYMENT_LABEL,
        },
        {  # the per-release SLIs of a canary's analysis (shepherd.rollout)
            "action": "replace",
            "sourceLabels": ["__meta_kubernetes_pod_label_shepherd_dev_release"],
            "targetLabel": RELEASE_LABEL,
        },
    ]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": {OWNER_LABEL: resource.name}},
            "podMetricsEndpoints": [
                {"port": "http", "path": "/metrics", "interval": interval, "relabelings": relabelings},
                {"port": "metrics", "path": "/metrics", "interval": interval, "relabelings": relabelings},
            ],
        },
    }


def dashboard_configmap(resource: AgentDeployment, content: MonitoringContent) -> dict[str, Any]:
    meta = metadata(resource, dashboard_name(resource), MONITORING_COMPONENT)
    meta["labels"] = {**meta["labels"], DASHBOARD_LABEL: "1"}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {f"{resource.namespace}-{resource.name}.json": content.dashboard_json},
    }


def render(
    resource: AgentDeployment, content: MonitoringContent, labels: MonitoringLabels = NO_LABELS
) -> list[dict[str, Any]]:
    wants = resource.spec.monitoring
    objs: list[dict[str, Any]] = []
    if wants.pod_monitor:
        objs.append(pod_monitor(resource, labels))
    if wants.dashboard:
        objs.append(dashboard_configmap(resource, content))
    return objs
