"""The agent workload: Deployment, Service, ServiceAccount, ConfigMap, PodDisruptionBudget, NetworkPolicy."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from shepherd.api import AgentDeployment
from shepherd.render import service_env
from shepherd.render.common import (
    AGENT_COMPONENT,
    HTTP_PORT,
    REDIS_TLS_CA_KEY,
    agent_name,
    config_name,
    labels,
    metadata,
    selector_labels,
)
from shepherd.render.secret_hash import NO_DIGESTS, SecretDigests, annotate

#: Pod template annotation: a hash of the ConfigMap data, so a settings change rolls the Pods.
CONFIG_HASH_ANNOTATION = "shepherd.dev/config-hash"
AGENT_CONTAINER = "agent"
COLLECTOR_CONTAINER = "otel-collector"
REDIS_CA_VOLUME = "redis-ca"
#: Numeric ids so ``runAsNonRoot`` can be verified whatever USER the image declares.
RUN_AS_USER = 10001


def restricted_security_context() -> dict[str, Any]:
    """Container security context meeting the ``restricted`` Pod Security Standard."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "fsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _resources(requirements: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if requirements.requests:
        out["requests"] = {k: str(v) for k, v in sorted(requirements.requests.items())}
    if requirements.limits:
        out["limits"] = {k: str(v) for k, v in sorted(requirements.limits.items())}
    return out


def configmap(resource: AgentDeployment) -> dict[str, Any]:
    """Plain settings of the agent container (``envFrom``); secrets are referenced in the Deployment."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(resource, config_name(resource), AGENT_COMPONENT),
        "data": service_env.config_data(resource),
    }


def config_hash(resource: AgentDeployment) -> str:
    text = json.dumps(service_env.config_data(resource), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _agent_container(resource: AgentDeployment) -> dict[str, Any]:
    spec = resource.spec
    probe = {"httpGet": {"path": "/healthz", "port": "http"}}
    container: dict[str, Any] = {
        "name": AGENT_CONTAINER,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "command": ["agent-service"],
        "args": ["--host", "0.0.0.0", "--port", str(HTTP_PORT)],
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": config_name(resource)}}],
        "startupProbe": {**probe, "periodSeconds": 2, "failureThreshold": 30, "timeoutSeconds": 2},
        "livenessProbe": {**probe, "periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 2},
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 2,
            "timeoutSeconds": 2,
        },
        # Endpoints drop the Pod before SIGTERM reaches the server; then it drains in-flight runs.
        "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
        "securityContext": restricted_security_context(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if _redis_tls(resource):
        container["volumeMounts"].append(
            {"name": REDIS_CA_VOLUME, "mountPath": service_env.REDIS_CA_DIR, "readOnly": True}
        )
    env = service_env.container_env(resource)
    if env:
        container["env"] = env
    resources = _resources(spec.resources)
    if resources:
        container["resources"] = resources
    return container


def _collector_sidecar(resource: AgentDeployment) -> dict[str, Any]:
    """OpenTelemetry Collector as a native sidecar: OTLP/HTTP in on loopback, out to the endpoint."""
    tracing = resource.spec.tracing
    return {
        "name": COLLECTOR_CONTAINER,
        "image": tracing.collector.image,
        "restartPolicy": "Always",
        "args": [
            "--config=env:OTELCOL_CONFIG",
        ],
        "env": [{"name": "OTELCOL_CONFIG", "value": collector_config(tracing.otlp_endpoint or "")}],
        "ports": [{"name": "otlp-http", "containerPort": 4318, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": restricted_security_context(),
    }


def collector_config(endpoint: str) -> str:
    """A minimal collector pipeline: OTLP/HTTP receiver on loopback → batch → OTLP/HTTP exporter."""
    return json.dumps(
        {
            "receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:4318"}}}},
            "processors": {"batch": {}},
            "exporters": {"otlphttp": {"endpoint": endpoint}},
            "service": {
                "pipelines": {
                    "traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["otlphttp"]}
                }
            },
        },
        sort_keys=True,
    )


def _user_sidecar(sidecar: Any) -> dict[str, Any]:
    container = sidecar.model_dump(by_alias=True, exclude_none=True, mode="json")
    container["restartPolicy"] = "Always"
    container.setdefault("securityContext", restricted_security_context())
    return container


def _topology_spread(resource: AgentDeployment) -> list[dict[str, Any]]:
    selector = {"matchLabels": selector_labels(resource, AGENT_COMPONENT)}
    return [
        {"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": selector}
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]


def _redis_tls(resource: AgentDeployment) -> Any:
    managed = resource.spec.redis.managed
    return managed.tls if managed is not None else None


def _volumes(resource: AgentDeployment) -> list[dict[str, Any]]:
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}]
    tls = _redis_tls(resource)
    if tls is not None:  # only the CA: the agent verifies the server, it holds no server key
        items = [{"key": REDIS_TLS_CA_KEY, "path": REDIS_TLS_CA_KEY}]
        volumes.append({"name": REDIS_CA_VOLUME, "secret": {"secretName": tls.secret_name, "items": items}})
    return volumes


def deployment(resource: AgentDeployment, secrets: SecretDigests = NO_DIGESTS) -> dict[str, Any]:
    """The agent Deployment. ``replicas`` is left out when an autoscaler owns it; ``secrets``: the
    digest of the Secret keys its Pods read (a rotation rolls them)."""
    spec = resource.spec
    init_containers = []
    if spec.tracing.collector.enabled:
        init_containers.append(_collector_sidecar(resource))
    init_containers.extend(_user_sidecar(s) for s in spec.sidecars)
    pod_spec: dict[str, Any] = {
        "serviceAccountName": agent_name(resource),
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": spec.termination_grace_period_seconds,
        "securityContext": pod_security_context(),
        "containers": [_agent_container(resource)],
        "topologySpreadConstraints": _topology_spread(resource),
        "volumes": _volumes(resource),
    }
    if init_containers:
        pod_spec["initContainers"] = init_containers
    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(resource, AGENT_COMPONENT)},
        "revisionHistoryLimit": 5,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
        "template": {
            "metadata": {
                "labels": labels(resource, AGENT_COMPONENT),
                "annotations": annotate({CONFIG_HASH_ANNOTATION: config_hash(resource)}, secrets.agent),
            },
            "spec": pod_spec,
        },
    }
    if spec.autoscaling is None:
        deployment_spec = {"replicas": spec.replicas, **deployment_spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(resource, agent_name(resource), AGENT_COMPONENT),
        "spec": deployment_spec,
    }


def service(resource: AgentDeployment) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(resource, agent_name(resource), AGENT_COMPONENT),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(resource, AGENT_COMPONENT),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def service_account(resource: AgentDeployment) -> dict[str, Any]:
    """An identity per agent with no API token mounted: the agent never talks to the apiserver."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(resource, agent_name(resource), AGENT_COMPONENT),
        "automountServiceAccountToken": False,
    }


def pod_disruption_budget(resource: AgentDeployment) -> dict[str, Any]:
    """At most one agent Pod evicted at a time (voluntary disruptions)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(resource, agent_name(resource), AGENT_COMPONENT),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(resource, AGENT_COMPONENT)},
        },
    }


def network_policy(resource: AgentDeployment) -> dict[str, Any] | None:
    """Ingress to the API port from this namespace and the listed ones; None when disabled."""
    policy = resource.spec.network_policy
    if not policy.enabled:
        return None
    peers: list[dict[str, Any]] = [{"podSelector": {}}]
    peers.extend(
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
        for ns in policy.allowed_namespaces
    )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(resource, agent_name(resource), AGENT_COMPONENT),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(resource, AGENT_COMPONENT)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": peers, "ports": [{"port": "http", "protocol": "TCP"}]}],
        },
    }


def render(resource: AgentDeployment, secrets: SecretDigests = NO_DIGESTS) -> list[dict[str, Any]]:
    """Every workload child, in apply order (config and identity before the Deployment)."""
    objs = [
        service_account(resource),
        configmap(resource),
        deployment(resource, secrets),
        service(resource),
        pod_disruption_budget(resource),
        network_policy(resource),
    ]
    return [o for o in objs if o is not None]
