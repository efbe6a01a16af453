"""The per-resource dashboard (the real board, preset) and the fleet's SLO PrometheusRules."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from shepherd import fleetrules
from shepherd.render import monitoring, render_all
from shepherd.slo.rules import rule_groups

from .conftest import load_case, make_resource
from .fake_kube import FakeKube

REPO = Path(__file__).resolve().parents[3]


def _body(name: str, window: str, namespace: str = "team-a", rule: bool = True) -> dict:
    return {
        "apiVersion": "shepherd.dev/v1alpha1",
        "kind": "AgentDeployment",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}"},
        "spec": {"slo": {"window": window}, "monitoring": {"prometheusRule": rule}},
    }


def _rules(objs: list[dict]) -> list[str]:
    return sorted(
        json.dumps(r, sort_keys=True) for o in objs for g in o["spec"]["groups"] for r in g["rules"]
    )


def test_packaged_board_is_the_generated_one():
    packaged = (resources.files("shepherd") / monitoring.BOARD_RESOURCE).read_text(encoding="utf-8")
    committed = (REPO / "dashboards" / "shepherd-agentdeployment.json").read_text(encoding="utf-8")
    assert packaged == committed, "stale package copy: run `python hack/generate.py`"


def test_dashboard_is_the_real_board_preset_to_the_resource():
    resource = make_resource(load_case("minimal"))
    content = monitoring.dashboard_content(resource)
    board = json.loads(content.dashboard_json)
    template = monitoring.board_template()
    assert board["panels"] == template["panels"]
    assert board["panels"]
    assert board["uid"] == monitoring.dashboard_uid("team-a", "demo") != template["uid"]
    assert len(board["uid"]) <= 40
    assert "team-a/demo" in board["title"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    for name, value in (("namespace", "team-a"), ("agentdeployment", "demo")):
        assert variables[name]["current"] == {"selected": True, "text": value, "value": value}
        assert variables[name]["options"] == [variables[name]["current"]]
    # stable per resource, different between resources; the template itself is untouched
    assert monitoring.dashboard_content(resource).dashboard_json == content.dashboard_json
    assert monitoring.dashboard_uid("team-a", "other") != board["uid"]
    assert "current" not in {v["name"]: v for v in template["templating"]["list"]}["namespace"]
    configmap = next(
        o for o in render_all(resource, content).all if monitoring.DASHBOARD_LABEL in o["metadata"]["labels"]
    )
    assert json.loads(configmap["data"]["team-a-demo.json"]) == board


def test_no_per_resource_prometheus_rule():
    resource = make_resource(load_case("full"))
    assert resource.spec.monitoring.prometheus_rule
    kinds = [o["kind"] for o in render_all(resource, monitoring.dashboard_content(resource)).all]
    assert "PrometheusRule" not in kinds


def test_one_rule_object_per_window_with_stable_names():
    fleet = [_body("a", "30d"), _body("b", "1h"), _body("c", "30d", namespace="team-b"), _body("d", "1w")]
    objs = fleetrules.desired(fleet, "shepherd-system")
    names = [o["metadata"]["name"] for o in objs]
    assert names == ["shepherd-slo-30d", "shepherd-slo-7d", "shepherd-slo-1h"]
    assert [o["metadata"]["labels"][fleetrules.WINDOW_LABEL] for o in objs] == ["30d", "7d", "1h"]
    for obj in objs:
        assert obj["metadata"]["namespace"] == "shepherd-system"
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "shepherd"
        assert "ownerReferences" not in obj["metadata"]
    # Together exactly the fleet's one rule set: no rule twice (burn windows of 7d and 28d coincide).
    assert _rules(objs) == _rules([{"spec": {"groups": rule_groups(["30d", "7d", "1h"])}}])
    fleet2 = [_body("x", "28d"), _body("y", "7d"), _body("z", "14d")]
    assert _rules(fleetrules.desired(fleet2, "ns")) == _rules(
        [{"spec": {"groups": rule_groups(["28d", "7d", "14d"])}}]
    )
    # Same input, same objects; the number of resources does not matter.
    assert fleetrules.desired(fleet + fleet, "shepherd-system") == objs


def test_resources_without_rules_and_chart_windows_are_left_out():
    assert fleetrules.desired([_body("a", "30d", rule=False)], "ns") == []
    objs = fleetrules.desired([_body("a", "30d"), _body("b", "1h")], "ns", chart_windows=["30d", "7d"])
    assert [o["metadata"]["name"] for o in objs] == ["shepherd-slo-1h"]
    chart = _rules([{"spec": {"groups": rule_groups(["30d", "7d"])}}])
    assert not set(_rules(objs)) & set(chart)  # nothing the chart's static copy already has


async def test_sync_applies_once_and_prunes_unused_windows():
    kube = FakeKube()
    fleet = fleetrules.FleetRules(kube, "shepherd-system")
    await fleet.sync([_body("a", "30d"), _body("b", "1h")])
    assert sorted(n for (p, _ns, n) in kube.objects if p == "prometheusrules") == [
        "shepherd-slo-1h",
        "shepherd-slo-30d",
    ]
    writes = kube.writes
    await fleet.sync([_body("a", "30d"), _body("b", "1h")])  # same windows: not even a LIST
    await fleet.sync([_body("a", "30d"), _body("b", "1h")], force=True)  # a resync round: no writes
    assert kube.writes == writes
    await fleet.sync([_body("a", "30d")])
    assert [n for (p, _ns, n) in kube.objects if p == "prometheusrules"] == ["shepherd-slo-30d"]


async def test_sync_without_the_crd_is_a_no_op():
    kube = FakeKube(absent_groups=("monitoring.coreos.com",))
    await fleetrules.FleetRules(kube, "shepherd-system").sync([_body("a", "30d")])
    assert kube.writes == 0
