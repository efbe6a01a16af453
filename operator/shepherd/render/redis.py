"""Managed Redis: a one-replica StatefulSet (AOF on a PVC, redis_exporter sidecar) and a headless Service.

Nothing is rendered for an external Redis; the applier prunes what a previous managed setting left.
"""

from __future__ import annotations

from typing import Any

from shepherd.api import AgentDeployment
from shepherd.render.common import (
    REDIS_COMPONENT,
    REDIS_EXPORTER_PORT,
    REDIS_PORT,
    labels,
    metadata,
    redis_name,
    selector_labels,
)
from shepherd.render.workload import restricted_security_context

REDIS_UID = 999  # the redis user of the official image


def statefulset(resource: AgentDeployment) -> dict[str, Any]:
    managed = resource.spec.redis.managed
    assert managed is not None
    name = redis_name(resource)
    redis_resources: dict[str, Any] = {}
    if managed.resources.requests:
        redis_resources["requests"] = {k: str(v) for k, v in sorted(managed.resources.requests.items())}
    if managed.resources.limits:
        redis_resources["limits"] = {k: str(v) for k, v in sorted(managed.resources.limits.items())}
    probe = {"exec": {"command": ["redis-cli", "-p", str(REDIS_PORT), "ping"]}, "timeoutSeconds": 2}
    redis_container: dict[str, Any] = {
        "name": "redis",
        "image": managed.image,
        "args": [
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--dir",
            "/data",
            "--port",
            str(REDIS_PORT),
            "--protected-mode",
            "no",
        ],
        "ports": [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
        "readinessProbe": {**probe, "periodSeconds": 5},
        "livenessProbe": {**probe, "periodSeconds": 10, "failureThreshold": 6},
        "securityContext": restricted_security_context(),
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    if redis_resources:
        redis_container["resources"] = redis_resources
    exporter = {
        "name": "redis-exporter",
        "image": managed.exporter_image,
        "env": [{"name": "REDIS_ADDR", "value": f"redis://127.0.0.1:{REDIS_PORT}"}],
        "ports": [{"name": "metrics", "containerPort": REDIS_EXPORTER_PORT, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
        "securityContext": restricted_security_context(),
    }
    pvc_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": str(managed.storage)}},
    }
    if managed.storage_class_name:
        pvc_spec["storageClassName"] = managed.storage_class_name
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(resource, name, REDIS_COMPONENT),
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": selector_labels(resource, REDIS_COMPONENT)},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
            "template": {
                "metadata": {"labels": labels(resource, REDIS_COMPONENT)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": REDIS_UID,
                        "runAsGroup": REDIS_UID,
                        "fsGroup": REDIS_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "terminationGracePeriodSeconds": 30,
                    "containers": [redis_container, exporter],
                },
            },
            "volumeClaimTemplates": [
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "data", "labels": labels(resource, REDIS_COMPONENT)},
                    "spec": pvc_spec,
                }
            ],
        },
    }


def headless_service(resource: AgentDeployment) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(resource, redis_name(resource), REDIS_COMPONENT),
        "spec": {
            "clusterIP": "None",
            "selector": selector_labels(resource, REDIS_COMPONENT),
            "ports": [
                {"name": "redis", "port": REDIS_PORT, "targetPort": "redis", "protocol": "TCP"},
                {"name": "metrics", "port": REDIS_EXPORTER_PORT, "targetPort": "metrics", "protocol": "TCP"},
            ],
        },
    }


def render(resource: AgentDeployment) -> list[dict[str, Any]]:
    if resource.spec.redis.managed is None:
        return []
    return [headless_service(resource), statefulset(resource)]
