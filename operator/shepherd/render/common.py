"""Names, labels and owner references shared by every child (one helper each)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shepherd.api import API_VERSION, KIND, AgentDeployment

MANAGED_BY = "shepherd"
#: Label put on every child; with ``managed-by`` it selects the children of one resource for pruning.
OWNER_LABEL = "shepherd.dev/agentdeployment"

AGENT_COMPONENT = "agent"
REDIS_COMPONENT = "redis"
HTTP_PORT = 8000
REDIS_PORT = 6379
REDIS_EXPORTER_PORT = 9121
BACKUP_COMPONENT = "redis-backup"
#: ACL users of the managed Redis; each one's password is the key of that name in ``redis_auth_name``.
REDIS_AGENT_USER = "agent"
REDIS_EXPORTER_USER = "exporter"
REDIS_BACKUP_USER = "backup"
REDIS_USERS = (REDIS_AGENT_USER, REDIS_EXPORTER_USER, REDIS_BACKUP_USER)
#: Keys of a cert-manager certificate Secret.
REDIS_TLS_CERT_KEY = "tls.crt"
REDIS_TLS_KEY_KEY = "tls.key"
REDIS_TLS_CA_KEY = "ca.crt"


def selector_labels(resource: AgentDeployment, component: str) -> dict[str, str]:
    """Immutable selector of a workload's Pods: the instance plus the component, nothing that may change."""
    return {
        "app.kubernetes.io/name": "agent-service" if component == AGENT_COMPONENT else component,
        "app.kubernetes.io/instance": resource.name,
        "app.kubernetes.io/component": component,
    }


def labels(resource: AgentDeployment, component: str) -> dict[str, str]:
    """Standard ``app.kubernetes.io/*`` labels plus the owner label, for every child and its Pods."""
    return {
        **selector_labels(resource, component),
        "app.kubernetes.io/part-of": "shepherd",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        OWNER_LABEL: resource.name,
    }


def merge_labels(own: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """``own`` plus the user's ``extra`` labels; Shepherd's own win on a clash (selectors keep matching)."""
    return {**own, **{k: v for k, v in extra.items() if k not in own}}


def child_selector(resource_name: str) -> str:
    """Label selector matching every child of one AgentDeployment (used to find what to prune)."""
    return f"app.kubernetes.io/managed-by={MANAGED_BY},{OWNER_LABEL}={resource_name}"


def owner_references(resource: AgentDeployment) -> list[dict[str, Any]]:
    """The controller reference that lets garbage collection delete children with the resource."""
    return [
        {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": resource.name,
            "uid": resource.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def metadata(resource: AgentDeployment, name: str, component: str, **extra: Any) -> dict[str, Any]:
    """Metadata of a child: name, namespace, labels, ownerReferences (and any extra keys)."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": resource.namespace,
        "labels": labels(resource, component),
        "ownerReferences": owner_references(resource),
    }
    meta.update(extra)
    return meta


def agent_name(resource: AgentDeployment) -> str:
    """The agent Deployment, Service, ServiceAccount, PDB, autoscaler and monitors use the resource's name."""
    return resource.name


def config_name(resource: AgentDeployment) -> str:
    return f"{resource.name}-config"


def redis_name(resource: AgentDeployment) -> str:
    return f"{resource.name}-redis"


def redis_auth_name(resource: AgentDeployment) -> str:
    """The Secret of the managed Redis' generated passwords (created once, see ``shepherd.credentials``)."""
    return f"{resource.name}-redis-auth"


def backup_name(resource: AgentDeployment) -> str:
    """The backup CronJob."""
    return f"{resource.name}-backup"


def backup_claim_name(resource: AgentDeployment) -> str:
    """The backup PVC the operator creates when ``backup.existingClaim`` is not set."""
    return f"{resource.name}-redis-backup"


def dashboard_name(resource: AgentDeployment) -> str:
    return f"{resource.name}-dashboard"
