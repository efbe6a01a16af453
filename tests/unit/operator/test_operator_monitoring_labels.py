"""Extra labels on the operator's monitoring objects (the chart's prometheusRules/podMonitors labels)."""

from __future__ import annotations

import json

import pytest
from shepherd import fleetrules, monitoring_labels
from shepherd.__main__ import main
from shepherd.monitoring_labels import POD_MONITOR_LABELS_ENV, RULE_LABELS_ENV, LabelsError
from shepherd.reconcile import Reconciler
from shepherd.render import monitoring, render_all
from shepherd.render.common import OWNER_LABEL

from .conftest import load_case, make_resource
from .fake_kube import FakeKube

RELEASE = {"release": "kps"}
#: A user label that clashes with one of Shepherd's own: Shepherd's must win.
CLASHING = {"release": "kps", "app.kubernetes.io/managed-by": "helm", OWNER_LABEL: "other"}
LABELS = monitoring.MonitoringLabels(prometheus_rule={"rules": "yes"}, pod_monitor=CLASHING)
CONTENT = monitoring.MonitoringContent(dashboard_json=json.dumps({"title": "demo", "uid": "demo"}))


def _fleet_body(name: str, window: str) -> dict:
    return {
        "apiVersion": "shepherd.dev/v1alpha1",
        "kind": "AgentDeployment",
        "metadata": {"name": name, "namespace": "team-a", "uid": f"uid-{name}"},
        "spec": {"slo": {"window": window}},
    }


# ------------------------------------------------------------------------------------ the environment


@pytest.mark.parametrize("raw", [None, "", "  ", "{}"])
def test_unset_or_empty_means_no_labels(raw):
    assert monitoring_labels.parse_labels(RULE_LABELS_ENV, raw) == {}


def test_good_labels_are_read_from_both_variables():
    env = {
        RULE_LABELS_ENV: '{"release": "kps", "example.com/team": "platform"}',
        POD_MONITOR_LABELS_ENV: '{"release": "kps-pods", "tier": ""}',
    }
    labels = monitoring_labels.from_environment(env)
    assert labels.prometheus_rule == {"release": "kps", "example.com/team": "platform"}
    assert labels.pod_monitor == {"release": "kps-pods", "tier": ""}
    assert monitoring_labels.from_environment({}) == monitoring.NO_LABELS


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{release: kps}", "not valid JSON"),
        ('["release"]', "expected a JSON object of labels, got list"),
        ('"kps"', "expected a JSON object of labels, got str"),
        ('{"release": 1}', "label 'release' must be a string, got int"),
        ('{"release": null}', "label 'release' must be a string, got NoneType"),
        ('{"release": {"name": "kps"}}', "label 'release' must be a string, got dict"),
        ('{"": "x"}', "label key '' is invalid"),
        ('{"Bad_Prefix/name": "x"}', "label key 'Bad_Prefix/name' is invalid: its prefix"),
        ('{"-name": "x"}', "label key '-name' is invalid"),
        ('{"release": "not ok"}', "label 'release' has an invalid value 'not ok'"),
        (json.dumps({"release": "x" * 64}), "label 'release' has an invalid value"),
    ],
)
def test_bad_values_name_the_variable(raw, message):
    with pytest.raises(LabelsError) as info:
        monitoring_labels.from_environment({POD_MONITOR_LABELS_ENV: raw})
    assert str(info.value).startswith(f"{POD_MONITOR_LABELS_ENV}: ")
    assert message in str(info.value)


def test_the_operator_refuses_to_start_on_a_bad_value(monkeypatch, capsys):
    monkeypatch.setenv(RULE_LABELS_ENV, '{"release": ')
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"shepherd-operator: {RULE_LABELS_ENV}: not valid JSON")


# ---------------------------------------------------------------------------------------- renderers


def test_default_output_is_unchanged_by_the_labels_parameter():
    resource = make_resource(load_case("full"))
    assert monitoring.render(resource, CONTENT) == monitoring.render(resource, CONTENT, monitoring.NO_LABELS)
    assert render_all(resource, CONTENT).all == render_all(resource, CONTENT, monitoring.NO_LABELS).all


def test_pod_monitor_carries_the_labels_and_shepherds_own_win(golden):
    resource = make_resource(load_case("full"))
    plain = monitoring.pod_monitor(resource)["metadata"]["labels"]
    labelled = monitoring.pod_monitor(resource, LABELS)["metadata"]["labels"]
    assert labelled == {**plain, "release": "kps"}
    assert labelled["app.kubernetes.io/managed-by"] == "shepherd"
    assert labelled[OWNER_LABEL] == "demo"
    golden.check("monitoring-full-labels", monitoring.render(resource, CONTENT, LABELS))


def test_only_the_pod_monitor_gets_the_pod_monitor_labels():
    resource = make_resource(load_case("full"))
    plain = {(o["kind"], o["metadata"]["name"]): o for o in render_all(resource, CONTENT).all}
    labelled = {(o["kind"], o["metadata"]["name"]): o for o in render_all(resource, CONTENT, LABELS).all}
    assert plain.keys() == labelled.keys()
    for key, obj in labelled.items():
        if key[0] == "PodMonitor":
            assert obj["metadata"]["labels"]["release"] == "kps"
            assert obj["spec"] == plain[key]["spec"]
        else:
            assert obj == plain[key], key


# ------------------------------------------------------------------------------------- fleet rules


def test_fleet_rules_carry_the_rule_labels_and_shepherds_own_win():
    fleet = [_fleet_body("a", "30d"), _fleet_body("b", "1h")]
    plain = fleetrules.desired(fleet, "shepherd-system")
    extra = {"release": "kps", fleetrules.WINDOW_LABEL: "bogus", "app.kubernetes.io/component": "x"}
    objs = fleetrules.desired(fleet, "shepherd-system", labels=extra)
    assert [o["metadata"]["name"] for o in objs] == ["shepherd-slo-30d", "shepherd-slo-1h"]
    for obj, before in zip(objs, plain, strict=True):
        assert obj["metadata"]["labels"] == {**before["metadata"]["labels"], "release": "kps"}
        assert obj["spec"] == before["spec"]
    assert fleetrules.desired(fleet, "shepherd-system", labels={}) == plain


async def test_fleet_sync_applies_the_labels_and_still_prunes():
    kube = FakeKube()
    extra = {"release": "kps", "app.kubernetes.io/component": "x"}
    fleet = fleetrules.FleetRules(kube, "shepherd-system", labels=extra)
    await fleet.sync([_fleet_body("a", "30d"), _fleet_body("b", "1h")])
    rules = {n: o for (p, _ns, n), o in kube.objects.items() if p == "prometheusrules"}
    assert sorted(rules) == ["shepherd-slo-1h", "shepherd-slo-30d"]
    for obj in rules.values():
        assert obj["metadata"]["labels"]["release"] == "kps"
        assert obj["metadata"]["labels"]["app.kubernetes.io/component"] == fleetrules.COMPONENT
    await fleet.sync([_fleet_body("a", "30d")])  # the selector still finds them: 1h is pruned
    assert [n for (p, _ns, n) in kube.objects if p == "prometheusrules"] == ["shepherd-slo-30d"]
    # A restart with other labels re-applies (the input hash changes), not only on a window change.
    relabelled = fleetrules.FleetRules(kube, "shepherd-system", labels={"release": "kps2"})
    await relabelled.sync([_fleet_body("a", "30d")])
    assert (
        kube.objects[("prometheusrules", "shepherd-system", "shepherd-slo-30d")]["metadata"]["labels"][
            "release"
        ]
        == "kps2"
    )


async def test_from_environment_hands_the_labels_to_the_fleet_rules(monkeypatch):
    monkeypatch.setenv("SHEPHERD_NAMESPACE", "shepherd-system")
    fleet = fleetrules.FleetRules.from_environment(FakeKube(), labels=RELEASE)
    assert fleet is not None
    assert fleet.labels == RELEASE


# --------------------------------------------------------------------------------------- reconcile


async def test_reconcile_applies_the_pod_monitor_labels_and_prunes_by_shepherds_labels():
    kube = FakeKube()
    rec = Reconciler(kube, labels=LABELS)
    body = {
        "apiVersion": "shepherd.dev/v1alpha1",
        "kind": "AgentDeployment",
        "metadata": {"name": "demo", "namespace": "team-a", "uid": "owner-uid", "generation": 1},
        "spec": {},
    }
    await rec.reconcile(body)
    pod_monitor = kube.objects[("podmonitors", "team-a", "demo")]
    assert pod_monitor["metadata"]["labels"]["release"] == "kps"
    assert pod_monitor["metadata"]["labels"][OWNER_LABEL] == "demo"
    off = {**body, "spec": {"monitoring": {"podMonitor": False}}, "status": {"observedGeneration": 1}}
    await rec.reconcile(off)
    assert ("podmonitors", "team-a", "demo") not in kube.objects
