"""Autoscaling: an autoscaling/v2 HPA or a KEDA ScaledObject, never both, none when disabled."""

from __future__ import annotations

from typing import Any

from shepherd.api import AgentDeployment, AutoscalingEngine
from shepherd.render.common import AGENT_COMPONENT, agent_name, metadata

INFLIGHT_METRIC = "agent_inflight_requests"


def _target(resource: AgentDeployment) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": agent_name(resource)}


def hpa(resource: AgentDeployment) -> dict[str, Any]:
    """CPU utilization plus in-flight requests per Pod (a Pods metric served by a metrics adapter)."""
    scaling = resource.spec.autoscaling
    assert scaling is not None
    metrics: list[dict[str, Any]] = []
    if scaling.target_cpu_utilization_percent:
        metrics.append(
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {
                        "type": "Utilization",
                        "averageUtilization": scaling.target_cpu_utilization_percent,
                    },
                },
            }
        )
    metrics.append(
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": INFLIGHT_METRIC},
                "target": {"type": "AverageValue", "averageValue": str(scaling.target_inflight_per_pod)},
            },
        }
    )
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(resource, agent_name(resource), AGENT_COMPONENT),
        "spec": {
            "scaleTargetRef": _target(resource),
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": metrics,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }


def inflight_query(resource: AgentDeployment) -> str:
    return f'sum({INFLIGHT_METRIC}{{namespace="{resource.namespace}",agentdeployment="{resource.name}"}})'


def scaled_object(resource: AgentDeployment) -> dict[str, Any]:
    """A KEDA ScaledObject with a Prometheus trigger on in-flight requests (and CPU when targeted)."""
    scaling = resource.spec.autoscaling
    assert scaling is not None
    triggers: list[dict[str, Any]] = [
        {
            "type": "prometheus",
            "name": "inflight",
            "metadata": {
                "serverAddress": resource.spec.monitoring.prometheus_url or "",
                "query": inflight_query(resource),
                "threshold": str(scaling.target_inflight_per_pod),
            },
        }
    ]
    if scaling.target_cpu_utilization_percent:
        triggers.append(
            {
                "type": "cpu",
                "name": "cpu",
                "metricType": "Utilization",
                "metadata": {"value": str(scaling.target_cpu_utilization_percent)},
            }
        )
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": metadata(resource, agent_name(resource), AGENT_COMPONENT),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": agent_name(resource)},
            "minReplicaCount": scaling.min_replicas,
            "maxReplicaCount": scaling.max_replicas,
            "triggers": triggers,
        },
    }


def render(resource: AgentDeployment) -> list[dict[str, Any]]:
    scaling = resource.spec.autoscaling
    if scaling is None:
        return []
    if scaling.engine == AutoscalingEngine.keda:
        return [scaled_object(resource)]
    return [hpa(resource)]
