"""The canary's analysis (``shepherd.budget.canary``): failures and the cases that are not."""

from __future__ import annotations

import datetime as dt

from shepherd import api
from shepherd.budget import canary, snapshot
from shepherd.budget.prometheus import Sample

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SLO = api.Slo.model_validate(
    {"availability": {"target": 99}, "latency": {"target": 90, "thresholdSeconds": 2.5}}
)
ANALYSIS = api.CanaryAnalysis(factor=2, burnThreshold=14.4, minEvents=20)
ROLLOUT = {"phase": "Progressing", "release": 4, "stableRelease": 2}


def judge(canary_counts, stable_counts, rollout=ROLLOUT):
    return canary.judge(rollout, ANALYSIS, SLO, {"4": canary_counts, "2": stable_counts}, NOW)


def test_a_canary_whose_runs_fail_is_judged_failed_naming_the_sli():
    verdict = judge({"availability": (40, 30)}, {"availability": (400, 0)})
    assert verdict["release"] == 4
    assert verdict["sli"] == "availability"
    assert "30 bad of 40" in verdict["reason"]


def test_worse_than_stable_by_the_factor_while_burning_fails():
    # 5 % bad (burn 5 < 14.4) against a stable 1 %: more than twice as bad, and burning budget.
    assert judge({"availability": (100, 5)}, {"availability": (1000, 10)})["sli"] == "availability"


def test_healthy_or_too_few_events_or_as_bad_as_stable_is_not_a_failure():
    assert judge({"availability": (100, 0)}, {"availability": (1000, 0)}) is None
    assert judge({"availability": (19, 19)}, {"availability": (1000, 0)}) is None  # minEvents
    # One bad event in 200 (0.5 %, burn 0.5): within the SLO even if the stable had none.
    assert judge({"availability": (200, 1)}, {"availability": (1000, 0)}) is None
    # As bad as the stable release (3 % each, burn 3): the release is not the cause.
    assert judge({"availability": (100, 3)}, {"availability": (1000, 30)}) is None


def test_only_a_canary_under_way_is_judged():
    assert judge({"availability": (40, 30)}, {}, rollout={**ROLLOUT, "phase": "Aborted"}) is None
    assert judge({"availability": (40, 30)}, {}, rollout=None) is None


def test_latency_is_judged_against_its_own_objective():
    assert judge({"latency": (50, 40)}, {"latency": (500, 10)})["sli"] == "latency"


def test_release_counts_are_parsed_per_resource_release_and_sli():
    labels = {"namespace": "shop", "agentdeployment": "support", "sli": "availability"}
    answers = {
        "release_events": [
            Sample({**labels, "release": "4"}, 40.0),
            Sample({**labels, "release": "2"}, 400.0),
        ],
        "release_errors": [Sample({**labels, "release": "4"}, 30.0), Sample({**labels, "release": "2"}, 0.0)],
    }
    snap = snapshot.parse(answers)[("shop", "support")]
    assert snap.releases == {"4": {"availability": (40.0, 30.0)}, "2": {"availability": (400.0, 0.0)}}


def test_a_step_passes_once_an_sli_of_the_canary_has_enough_events():
    assert canary.passed(ROLLOUT | {"step": 0}, ANALYSIS, SLO, {"4": {"availability": (19, 0)}}, NOW) is None
    verdict = canary.passed(ROLLOUT | {"step": 0}, ANALYSIS, SLO, {"4": {"availability": (20, 0)}}, NOW)
    assert (verdict["verdict"], verdict["release"], verdict["step"]) == ("Passed", 4, 0)
