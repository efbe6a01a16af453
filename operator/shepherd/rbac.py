"""The operator's RBAC rules, as data: the one source the chart's ClusterRole is rendered from.

Each rule lists exactly the verbs the code uses (see ``shepherd.kube`` and ``shepherd.apply``):
children are listed (one LIST per kind per reconcile), applied (server-side apply is a PATCH that
may create) and pruned (DELETE); Deployments are also watched (``child-deployment`` handler) and,
while a freeze holds their rollout, scaled through ``deployments/scale``; AgentDeployments are
watched and annotated by kopf, their status patched, and
``finalizers`` updated because children set blockOwnerDeletion. The Pods of an agent Deployment
that is not ready are listed (their termination messages). Secrets are read, watched and, for
the managed Redis' generated passwords only, created and completed (``shepherd.credentials``).

``lease_rules`` are the leader election's (``shepherd.leader``): a Role in the operator's own
namespace, not the ClusterRole, since the Lease lives there alone.
"""

from __future__ import annotations

from typing import Any

from shepherd import api
from shepherd.render.all import CHILD_KINDS

CHILD_VERBS = ["list", "create", "patch", "delete"]


def rules() -> list[dict[str, Any]]:
    """PolicyRules of the operator's ClusterRole (deterministic order)."""
    out: list[dict[str, Any]] = [
        {"apiGroups": [api.GROUP], "resources": [api.PLURAL], "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": [api.GROUP], "resources": [f"{api.PLURAL}/status"], "verbs": ["patch"]},
        {"apiGroups": [api.GROUP], "resources": [f"{api.PLURAL}/finalizers"], "verbs": ["update"]},
        # Secrets: read (a missing key is reported; the Pods' secrets digest), watched (a rotation
        # rolls the Pods), and the managed Redis' password Secret created or completed, never replaced.
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch", "create", "patch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
        # The agent Pods of a Deployment not ready, listed by its selector to say why they fail
        # to start (never watched: shepherd.reconcile).
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    ]
    by_group: dict[str, list[str]] = {}
    for kind in CHILD_KINDS:
        by_group.setdefault(kind.group, []).append(kind.plural)
    for group, plurals in by_group.items():
        out.append({"apiGroups": [group], "resources": sorted(plurals), "verbs": list(CHILD_VERBS)})
    # A held (frozen) Deployment still scales, through its scale subresource (shepherd.apply).
    for kind in CHILD_KINDS:
        if kind.scalable:
            out.append({"apiGroups": [kind.group], "resources": [f"{kind.plural}/scale"], "verbs": ["patch"]})
    # The child-deployment handler watches Deployments (kopf lists, then watches).
    out.append({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["watch"]})
    # kopf, when restricted with --namespace, watches Namespaces to follow the ones that match.
    out.append({"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]})
    # kopf watches CRDs to notice its resources appearing and going (resource discovery).
    out.append(
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["list", "watch"],
        }
    )
    return out


def lease_rules() -> list[dict[str, Any]]:
    """PolicyRules of the leader election's Role: read, create, take over and renew the Lease."""
    return [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}
    ]


def lease_role(namespace: str, name: str = "shepherd-operator-leader-election") -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace},
        "rules": lease_rules(),
    }


def lease_role_binding(
    namespace: str, service_account: str, name: str = "shepherd-operator-leader-election"
) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}],
    }


def cluster_role(name: str = "shepherd-operator", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": dict(labels or {"app.kubernetes.io/name": "shepherd"})},
        "rules": rules(),
    }


def cluster_role_binding(
    namespace: str, service_account: str, name: str = "shepherd-operator", role: str = "shepherd-operator"
) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}],
    }
