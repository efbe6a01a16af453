"""The admission decision: the same hold rules as the reconcile, applied to an UPDATE before it lands."""

from __future__ import annotations

import copy
from typing import Any

from shepherd import api, apply, webhook
from shepherd.render import render_all
from shepherd.render.monitoring import placeholder_content

FROZEN = {
    "freeze": {
        "level": "NonCritical",
        "reason": "error budget 80.0% consumed >= 75% (step 2: FreezeNonCritical)",
    },
    "released": {"generation": 1, "image": "agent:1"},
}


def body(
    image: str = "agent:1", replicas: int = 2, annotations=None, status=None, generation=1
) -> dict[str, Any]:
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {
            "name": "demo",
            "namespace": "team",
            "uid": "u-1",
            "generation": generation,
            "annotations": dict(annotations or {}),
        },
        "spec": {"image": image, "replicas": replicas, "redis": {"external": {"url": "redis://r:6379/0"}}},
        "status": copy.deepcopy(status if status is not None else FROZEN),
    }


def running(of: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The workload as the operator applied it for ``of``."""
    resource = api.parse(of)
    objs = render_all(resource, placeholder_content(resource)).workload
    return {(o["kind"], o["metadata"]["name"]): apply.stamped(o) for o in objs}


def test_a_frozen_change_is_rejected_with_the_hold_reason():
    old = body()
    reason = webhook.rejection(old, body(image="agent:2"), running(old))
    assert "rollouts frozen (NonCritical): error budget 80.0% consumed" in reason
    assert "team/demo" in reason
    assert "shepherd.dev/freeze-override" in reason


def test_not_frozen_passes():
    old = body(status={"freeze": {"level": "None"}})
    assert webhook.rejection(old, body(image="agent:2"), running(old)) is None


def test_scaling_and_metadata_edits_pass():
    old = body()
    assert webhook.rejection(old, body(replicas=5), running(old)) is None
    assert webhook.rejection(old, body(annotations={"team": "x"}), running(old)) is None


def test_critical_passes_non_critical_but_not_all():
    old = body()
    critical = {"shepherd.dev/change-class": "critical"}
    assert webhook.rejection(old, body(image="agent:2", annotations=critical), running(old)) is None
    all_frozen = {**FROZEN, "freeze": {"level": "All", "reason": "r"}}
    old_all = body(status=all_frozen)
    assert "frozen (All)" in webhook.rejection(
        old_all, body(image="agent:2", annotations=critical), running(old_all)
    )


def test_rollback_to_the_running_release_passes():
    released = body(image="agent:1")
    held = body(image="agent:2", generation=2)  # pending, not running
    assert webhook.rejection(held, body(image="agent:1", generation=3), running(released)) is None


def test_override_passes_once():
    old = body()
    override = {"shepherd.dev/freeze-override": "INC-7"}
    assert webhook.rejection(old, body(image="agent:2", annotations=override), running(old)) is None
    used = {
        **FROZEN,
        "freeze": {**FROZEN["freeze"], "overridesUsed": [{"generation": 2, "reason": "INC-7", "at": "t"}]},
    }
    old_used = body(image="agent:2", annotations=override, status=used, generation=2)
    new = body(image="agent:3", annotations=override, status=used, generation=3)
    assert "was used for generation 2" in webhook.rejection(old_used, new, running(body(image="agent:2")))
