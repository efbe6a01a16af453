"""Monitoring children: PodMonitor, PrometheusRule and a Grafana dashboard ConfigMap.

Rule and dashboard *content* belongs to the SLO code (``shepherd.slo``); it arrives here as a
``MonitoringContent`` argument so this module stays pure. ``placeholder_content`` is used until a
provider is plugged into the reconciler.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shepherd.api import AgentDeployment
from shepherd.render.common import OWNER_LABEL, agent_name, dashboard_name, metadata

MONITORING_COMPONENT = "monitoring"
#: Label Prometheus adds to every scraped series of this resource (the metrics contract).
AGENTDEPLOYMENT_LABEL = "agentdeployment"
DASHBOARD_LABEL = "grafana_dashboard"


@dataclass(frozen=True)
class MonitoringContent:
    """What the SLO code provides for one resource.

    ``rule_groups`` is the ``spec.groups`` list of a PrometheusRule (may be empty: fleet-wide
    recording rules live elsewhere); ``dashboard_json`` is a Grafana dashboard model as JSON text.
    """

    rule_groups: list[dict[str, Any]] = field(default_factory=list)
    dashboard_json: str = ""


def placeholder_content(resource: AgentDeployment) -> MonitoringContent:
    """Stand-in until the SLO issue's generator is wired in: no rules, an empty titled board."""
    board = {
        "title": f"{resource.namespace}/{resource.name} SLO",
        "uid": f"shepherd-{resource.uid[:8]}" if resource.uid else f"shepherd-{resource.name}"[:40],
        "schemaVersion": 39,
        "panels": [],
        "tags": ["shepherd"],
    }
    return MonitoringContent(rule_groups=[], dashboard_json=json.dumps(board, sort_keys=True))


def pod_monitor(resource: AgentDeployment) -> dict[str, Any]:
    """Scrapes the agent (port ``http``) and the redis_exporter (port ``metrics``) of this resource."""
    interval = resource.spec.monitoring.scrape_interval
    relabelings = [
        {
            "action": "replace",
            "sourceLabels": ["__meta_kubernetes_pod_label_shepherd_dev_agentdeployment"],
            "targetLabel": AGENTDEPLOYMENT_LABEL,
        }
    ]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": metadata(resource, agent_name(resource), MONITORING_COMPONENT),
        "spec": {
            "selector": {"matchLabels": {OWNER_LABEL: resource.name}},
            "podMetricsEndpoints": [
                {"port": "http", "path": "/metrics", "interval": interval, "relabelings": relabelings},
                {"port": "metrics", "path": "/metrics", "interval": interval, "relabelings": relabelings},
            ],
        },
    }


def prometheus_rule(resource: AgentDeployment, content: MonitoringContent) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata(resource, agent_name(resource), MONITORING_COMPONENT),
        "spec": {"groups": list(content.rule_groups)},
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


def render(resource: AgentDeployment, content: MonitoringContent) -> list[dict[str, Any]]:
    wants = resource.spec.monitoring
    objs: list[dict[str, Any]] = []
    if wants.pod_monitor:
        objs.append(pod_monitor(resource))
    if wants.prometheus_rule:
        objs.append(prometheus_rule(resource, content))
    if wants.dashboard:
        objs.append(dashboard_configmap(resource, content))
    return objs
