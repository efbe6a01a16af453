"""Extra labels for the monitoring objects the operator creates, read once at start-up.

A Prometheus with a ``ruleSelector`` / ``podMonitorSelector`` (kube-prometheus-stack selects on
``release: <name>``) only loads objects carrying its labels. The chart passes its
``prometheusRules.labels`` and ``podMonitors.labels`` as JSON objects in
``SHEPHERD_PROMETHEUS_RULE_LABELS`` and ``SHEPHERD_POD_MONITOR_LABELS`` (unset or empty: none).
``shepherd.__main__`` calls ``from_environment`` before the operator starts and exits with a message
naming the variable when one is not a JSON object of valid label keys and string values, so a bad
value never surfaces later as a failed apply.

The fleet PrometheusRules (``shepherd.fleetrules``) get the rule labels and each AgentDeployment's
PodMonitor (``shepherd.render.monitoring``) the pod-monitor labels; the renderers receive them as
data (``MonitoringLabels``) and Shepherd's own labels win on a clash (``merge_labels``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping

from shepherd.render.monitoring import MonitoringLabels

RULE_LABELS_ENV = "SHEPHERD_PROMETHEUS_RULE_LABELS"
POD_MONITOR_LABELS_ENV = "SHEPHERD_POD_MONITOR_LABELS"

_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class LabelsError(ValueError):
    """An environment variable that does not hold a JSON object of Kubernetes labels."""


def _key_problem(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if slash and not (prefix and len(prefix) <= 253 and _PREFIX.match(prefix)):
        return "its prefix is not a DNS subdomain"
    if not name or len(name) > 63 or not _NAME.match(name):
        return "its name must be 1-63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
    return None


def parse_labels(variable: str, raw: str | None) -> dict[str, str]:
    """The labels in ``raw`` (the value of ``variable``): a JSON object of string label values."""
    if not (raw or "").strip():
        return {}
    try:
        value = json.loads(raw or "")
    except json.JSONDecodeError as exc:
        raise LabelsError(f"{variable}: not valid JSON ({exc}): {raw!r}") from None
    if not isinstance(value, dict):
        raise LabelsError(
            f"{variable}: expected a JSON object of labels, got {type(value).__name__}: {raw!r}"
        )
    for key, val in value.items():
        if problem := _key_problem(key):
            raise LabelsError(f"{variable}: label key {key!r} is invalid: {problem}")
        if not isinstance(val, str):
            raise LabelsError(f"{variable}: label {key!r} must be a string, got {type(val).__name__}")
        if len(val) > 63 or not _NAME.match(val):
            raise LabelsError(
                f"{variable}: label {key!r} has an invalid value {val!r}: at most 63 alphanumerics, "
                "'-', '_' or '.', starting and ending alphanumeric"
            )
    return value


def from_environment(env: Mapping[str, str] | None = None) -> MonitoringLabels:
    """Both label sets from ``env`` (default ``os.environ``); raises ``LabelsError`` on a bad value."""
    env = os.environ if env is None else env
    return MonitoringLabels(
        prometheus_rule=parse_labels(RULE_LABELS_ENV, env.get(RULE_LABELS_ENV)),
        pod_monitor=parse_labels(POD_MONITOR_LABELS_ENV, env.get(POD_MONITOR_LABELS_ENV)),
    )
