"""Autoscaling: an autoscaling/v2 HPA or a KEDA ScaledObject, never both, none when disabled."""

from __future__ import annotations

from typing import Any

from shepherd.api import AgentDeployment, AutoscalingEngine
from shepherd.render.common import AGENT_COMPONENT, agent_name, metadata

#: The External metric the HPA asks the metrics adapter for: queued + running runs of the deployment,
#: ``sum(agent_runs_running) + max(agent_runs_pending)`` (docs/autoscaling.md has the adapter rule).
RUNS_METRIC = "agent_runs_active"


def _target(resource: AgentDeployment) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": agent_name(resource)}


def hpa(resource: AgentDeployment) -> dict[str, Any]:
    """CPU utilization plus queued + running runs per Pod (an External metric from a metrics adapter)."""
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
            "type": "External",
            "external": {
                "metric": {
                    "name": RUNS_METRIC,
                    "selector": {
                        "matchLabels": {"namespace": resource.namespace, "agentdeployment": resource.name}
                    },
                },
                "target": {"type": "AverageValue", "averageValue": str(scaling.target_runs_per_pod)},
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


def runs_query(resource: AgentDeployment) -> str:
    """Queued + running runs of the deployment (the pending gauge is the same on every Pod: max)."""
    selector = f'{{namespace="{resource.namespace}",agentdeployment="{resource.name}"}}'
    return (
        f"(sum(agent_runs_running{selector}) or vector(0)) + (max(agent_runs_pending{selector}) or vector(0))"
    )


def scaled_object(resource: AgentDeployment) -> dict[str, Any]:
    """A KEDA ScaledObject with a Prometheus trigger on queued + running runs (and CPU when targeted)."""
    scaling = resource.spec.autoscaling
    assert scaling is not None
    triggers: list[dict[str, Any]] = [
        {
            "type": "prometheus",
            "name": "runs",
            "metadata": {
                "serverAddress": resource.spec.monitoring.prometheus_url or "",
                "query": runs_query(resource),
                "threshold": str(scaling.target_runs_per_pod),
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
