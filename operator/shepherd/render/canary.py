"""The canary Deployment and its ConfigMap: the stable pair renamed, its Pods told apart by a label.

The canary runs the newest spec next to the stable Deployment, behind the same Service (whose
selector both match). Its own selector adds ``shepherd.dev/track: canary``, so the two Deployments
never claim each other's Pods, and its own ConfigMap keeps the stable Pods' settings out of reach
of the new spec.
"""

from __future__ import annotations

import copy
from typing import Any

from shepherd.api import AgentDeployment
from shepherd.render.common import agent_name, config_name
from shepherd.render.workload import RELEASE_LABEL

TRACK_LABEL = "shepherd.dev/track"
CANARY_TRACK = "canary"


def canary_name(resource: AgentDeployment) -> str:
    return f"{agent_name(resource)}-canary"


def canary_config_name(resource: AgentDeployment) -> str:
    return f"{config_name(resource)}-canary"


def render(
    resource: AgentDeployment,
    stable_configmap: dict[str, Any],
    stable_deployment: dict[str, Any],
    release: int,
    replicas: int,
) -> list[dict[str, Any]]:
    """The canary ConfigMap and Deployment from the rendered stable ones (pure): ``release`` Pods,
    ``replicas`` of them (set even when an autoscaler owns the stable count)."""
    config = copy.deepcopy(stable_configmap)
    config["metadata"]["name"] = canary_config_name(resource)
    deployment = copy.deepcopy(stable_deployment)
    deployment["metadata"]["name"] = canary_name(resource)
    spec = deployment["spec"]
    spec["replicas"] = replicas
    spec["selector"]["matchLabels"][TRACK_LABEL] = CANARY_TRACK
    template = spec["template"]
    template["metadata"]["labels"].update({TRACK_LABEL: CANARY_TRACK, RELEASE_LABEL: str(release)})
    for container in template["spec"]["containers"]:
        for source in container.get("envFrom") or []:
            ref = source.get("configMapRef") or {}
            if ref.get("name") == config_name(resource):
                ref["name"] = canary_config_name(resource)
    # Spread the canary's few Pods by their own selector, not the stable's.
    for constraint in template["spec"].get("topologySpreadConstraints") or []:
        constraint["labelSelector"] = {"matchLabels": dict(spec["selector"]["matchLabels"])}
    return [config, deployment]
