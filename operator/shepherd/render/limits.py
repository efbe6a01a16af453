"""The longest AgentDeployment name whose children all get valid names, derived from the renderers.

Every child is named after the resource (``<name>``, ``<name>-redis``, ``<name>-backup``...) and
carries it as a label value; Kubernetes bounds each of those. Rather than a hand-kept number, the
limit is found by rendering a resource with every optional child turned on and taking, over all
children, the kind's limit minus what the child adds to the name. The CRD refuses longer names
(``shepherd.crd``) with the child that binds, and so does the pydantic model.
"""

from __future__ import annotations

import functools
from typing import Any

#: Kinds whose names have a tighter limit than a DNS subdomain (253), and why.
KIND_NAME_LIMITS: dict[str, tuple[int, str]] = {
    "Service": (63, "a Service name is a DNS label (at most 63 characters)"),
    "StatefulSet": (
        52,
        "a StatefulSet name may have at most 52 characters (its controller-revision-hash label adds 11)",
    ),
    "CronJob": (52, "a CronJob name may have at most 52 characters (its Jobs' names add 11)"),
}
SUBDOMAIN_LIMIT = 253
LABEL_VALUE_LIMIT = 63
_PROBE = "x" * 20


def _probe() -> Any:
    from shepherd import api

    spec = {
        "autoscaling": {"engine": "hpa"},
        "networkPolicy": {"enabled": True},
        "redis": {"managed": {"backup": {}, "tls": {"secretName": "tls"}}},
        "tracing": {"otlpEndpoint": "http://collector:4318", "collector": {"enabled": True}},
    }
    # Constructed, not validated: validating a resource's name calls back into this module.
    return api.AgentDeployment.model_construct(
        metadata={"name": _PROBE, "namespace": "default", "uid": "probe"},
        spec=api.AgentDeploymentSpec.model_validate(api.PlatformDefaults().fill(spec)),
        status={},
    )


def _label_values(obj: Any) -> list[str]:
    """Label values anywhere in an object (its own and its templates')."""
    found: list[str] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in ("labels", "matchLabels") and isinstance(value, dict):
                found.extend(str(v) for v in value.values())
            else:
                found.extend(_label_values(value))
    elif isinstance(obj, list):
        for item in obj:
            found.extend(_label_values(item))
    return found


@functools.cache
def name_limit() -> tuple[int, str]:
    """(longest allowed metadata.name, the child and rule that bind it)."""
    from shepherd.render.all import render_all
    from shepherd.render.monitoring import MonitoringContent

    resource = _probe()
    bounds: list[tuple[int, str]] = []
    for child in render_all(resource, MonitoringContent()).all:
        kind, name = child["kind"], child["metadata"]["name"]
        limit, why = KIND_NAME_LIMITS.get(kind, (SUBDOMAIN_LIMIT, "a name has at most 253 characters"))
        shown = name.replace(_PROBE, "<name>")
        bounds.append((limit - (len(name) - len(_PROBE)), f"{kind} {shown}: {why}"))
        for value in _label_values(child):
            if _PROBE in value:
                shown = value.replace(_PROBE, "<name>")
                overhead = len(value) - len(_PROBE)
                bounds.append((LABEL_VALUE_LIMIT - overhead, f"label value {shown}: at most 63 characters"))
    return min(bounds)


def name_problem(name: str) -> str | None:
    """Why a resource may not be called ``name`` (too long for one of its children), or None."""
    limit, why = name_limit()
    if len(name) <= limit:
        return None
    return f"metadata.name may have at most {limit} characters ({why}); {name!r} has {len(name)}"
