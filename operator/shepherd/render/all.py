"""All children of one AgentDeployment, and the kinds the operator may ever create (for pruning)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shepherd.api import AgentDeployment
from shepherd.render import autoscaling, monitoring, redis, workload
from shepherd.render.secret_hash import NO_DIGESTS, SecretDigests


@dataclass(frozen=True)
class ChildKind:
    """A kind the operator owns children of: enough to build API paths and RBAC rules."""

    group: str
    version: str
    kind: str
    plural: str
    #: True for kinds from optional third-party CRDs (monitoring.coreos.com, keda.sh).
    optional: bool = False
    #: True for kinds with a ``scale`` subresource the operator uses (a held rollout still scales).
    scalable: bool = False
    #: False for kinds holding data (a backup volume): never deleted because a spec stopped wanting it.
    prune: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


#: Every kind ``render_all`` can produce, in apply order. Pruning lists exactly these.
CHILD_KINDS: tuple[ChildKind, ...] = (
    ChildKind("", "v1", "ServiceAccount", "serviceaccounts"),
    ChildKind("", "v1", "ConfigMap", "configmaps"),
    ChildKind("", "v1", "Service", "services"),
    ChildKind("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", prune=False),
    ChildKind("apps", "v1", "StatefulSet", "statefulsets"),
    ChildKind("apps", "v1", "Deployment", "deployments", scalable=True),
    ChildKind("batch", "v1", "CronJob", "cronjobs"),
    ChildKind("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    ChildKind("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies"),
    ChildKind("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    ChildKind("keda.sh", "v1alpha1", "ScaledObject", "scaledobjects", optional=True),
    ChildKind("monitoring.coreos.com", "v1", "PodMonitor", "podmonitors", optional=True),
    ChildKind("monitoring.coreos.com", "v1", "PrometheusRule", "prometheusrules", optional=True),
)

_BY_API_KIND = {(k.api_version, k.kind): k for k in CHILD_KINDS}


def kind_of(obj: dict[str, Any]) -> ChildKind:
    return _BY_API_KIND[(obj["apiVersion"], obj["kind"])]


@dataclass(frozen=True)
class ChildSet:
    """Desired children, split so a freeze can hold back the workload while the rest stays applied."""

    workload: list[dict[str, Any]]
    """Objects whose change is a rollout (the agent ConfigMap and Deployment)."""
    others: list[dict[str, Any]]

    @property
    def all(self) -> list[dict[str, Any]]:
        order = {(k.api_version, k.kind): i for i, k in enumerate(CHILD_KINDS)}
        return sorted(self.workload + self.others, key=lambda o: order[(o["apiVersion"], o["kind"])])


def render_all(
    resource: AgentDeployment,
    content: monitoring.MonitoringContent,
    labels: monitoring.MonitoringLabels = monitoring.NO_LABELS,
    secrets: SecretDigests = NO_DIGESTS,
) -> ChildSet:
    """Every desired child of ``resource`` (pure); ``labels``: extra labels for monitoring children;
    ``secrets``: digests of the Secret keys the Pods read (``shepherd.render.secret_hash``)."""
    work = workload.render(resource, secrets)
    rollout = [o for o in work if o["kind"] in ("Deployment", "ConfigMap")]
    rest = [o for o in work if o["kind"] not in ("Deployment", "ConfigMap")]
    rest += redis.render(resource, secrets)
    rest += autoscaling.render(resource)
    rest += monitoring.render(resource, content, labels)
    return ChildSet(workload=rollout, others=rest)
