"""The ClusterRole data covers exactly what the code calls (the integration test proves it suffices)."""

from __future__ import annotations

import kubernetes_validate
from shepherd import rbac
from shepherd.render.all import CHILD_KINDS


def _allowed(group: str, resource: str) -> set[str]:
    verbs: set[str] = set()
    for rule in rbac.rules():
        if group in rule["apiGroups"] and resource in rule["resources"]:
            verbs |= set(rule["verbs"])
    return verbs


def test_every_child_kind_can_be_listed_applied_and_pruned():
    for kind in CHILD_KINDS:
        assert _allowed(kind.group, kind.plural) >= {"list", "create", "patch", "delete"}, kind


def test_no_wildcards_and_secrets_never_deleted_or_replaced():
    for rule in rbac.rules():
        assert "*" not in rule["verbs"]
        assert "*" not in rule["resources"]
    # Secrets are read and watched; only the managed Redis' password Secret is created or completed.
    assert _allowed("", "secrets") == {"get", "list", "watch", "create", "patch"}
    assert _allowed("shepherd.dev", "agentdeployments/status") == {"patch"}


def test_cluster_role_is_valid():
    kubernetes_validate.validate(rbac.cluster_role(), "1.36.0", strict=True)
    kubernetes_validate.validate(rbac.cluster_role_binding("ops", "shepherd"), "1.36.0", strict=True)
