"""Fleet-wide rule generation: structure, invariants, and the committed files (golden)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from shepherd.slo import rules
from shepherd.slo.__main__ import main
from shepherd.slo.generate import generated_files
from shepherd.slo.rules import RuleConfig, fmt_number, operator_rule_groups, rule_groups, runbook_url

ROOT = Path(__file__).resolve().parents[3]
ALERTS = ROOT / "alerts"


def _rules(groups: list[dict]) -> list[dict]:
    return [rule for group in groups for rule in group["rules"]]


def _alerts(groups: list[dict]) -> list[dict]:
    return [r for r in _rules(groups) if "alert" in r]


def test_committed_rule_files_are_fresh() -> None:
    """`make generate` output is committed; regenerate and diff (run `python -m shepherd.slo`)."""
    for name, content in generated_files().items():
        committed = (ALERTS / name).read_text()
        assert committed == content, f"alerts/{name} is stale: run `python -m shepherd.slo`"


def test_generated_files_carry_do_not_edit_and_parse() -> None:
    files = generated_files()
    for name, content in files.items():
        assert content.startswith("# DO NOT EDIT"), name
    plain = yaml.safe_load(files["shepherd-rules.yaml"])
    crd = yaml.safe_load(files["shepherd-prometheusrule.yaml"])
    assert crd["apiVersion"] == "monitoring.coreos.com/v1"
    assert crd["kind"] == "PrometheusRule"
    assert crd["spec"]["groups"] == plain["groups"]


def test_one_rule_set_per_distinct_window_not_per_resource() -> None:
    one = rule_groups(["30d"])
    # Spellings of the same window collapse; a fleet of 500 resources on 30d is still this set.
    assert rule_groups(["30d", "30d", "720h"]) == one
    assert [g["name"] for g in one] == [
        "shepherd-sli",
        "shepherd-slo-30d",
        "shepherd-slo-30d-steps",
        "shepherd-llm",
        "shepherd-redis",
        "shepherd-spend",
        "shepherd-spend-steps",
    ]
    # 7 windows x 3 SLIs x (events, errors) + failed runs by reason at the budget step; 7 burn
    # rates + 2 budget records + failures by reason + 3 SLIs x 4 burn alerts + no data; 3 step
    # records; fallback record + 3 circuit/fallback alerts; Redis memory; 5 spend rates + 7 spend
    # burn rates (4 windows of the day, 3 of the month) + 4 spend alerts; the spend step.
    assert [len(g["rules"]) for g in one] == [42 + 1, 7 + 2 + 1 + 12 + 1, 3, 4, 1, 5 + 7 + 4, 1]
    two = rule_groups(["30d", "7d"])
    assert [g["name"] for g in two] == [
        "shepherd-sli",
        "shepherd-slo-30d",
        "shepherd-slo-30d-steps",
        "shepherd-slo-7d",
        "shepherd-slo-7d-steps",
        "shepherd-llm",
        "shepherd-redis",
        "shepherd-spend",
        "shepherd-spend-steps",
    ]


def test_no_two_rules_write_the_same_series() -> None:
    """Prometheus would reject (or silently drop) samples written twice by different groups."""
    seen = set()
    for rule in _rules(
        rule_groups(["30d", "28d", "7d", "1h"], RuleConfig(scrape_interval=timedelta(seconds=1)))
    ):
        if "record" in rule:
            key = (rule["record"], tuple(sorted(rule.get("labels", {}).items())))
            assert key not in seen, key
            seen.add(key)


def test_every_alert_has_for_severity_scope_and_annotations() -> None:
    groups = rule_groups() + operator_rule_groups()
    for alert in _alerts(groups):
        name = alert["alert"]
        assert re.fullmatch(r"\d+[dhms]+.*|0s", alert["for"]), name
        assert alert["labels"]["severity"] in ("critical", "warning", "info"), name
        annotations = alert["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        assert "{{" not in annotations["summary"], f"{name}: summary must be fixed text"
        if name != "ShepherdOperatorDown":  # absent() has neither labels nor a meaningful value
            assert "$labels" in annotations["description"] or "$value" in annotations["description"], name
        assert annotations["runbook_url"] == runbook_url(name), name
    for alert in _alerts(rule_groups()):
        # Service alerts are per AgentDeployment: the expression keeps both labels.
        assert "namespace, agentdeployment" in alert["expr"], alert["alert"]
        assert "$labels.agentdeployment" in alert["annotations"]["description"], alert["alert"]


def test_burn_alerts_carry_window_labels_and_fixed_precision_thresholds() -> None:
    burn = [a for a in _alerts(rule_groups(["30d"])) if a["alert"].endswith("BudgetBurn") and "sli" not in a]
    burn = [a for a in burn if a["alert"] != "ShepherdSpendBudgetBurn"]
    assert len(burn) == 12
    assert {a["alert"] for a in burn} == {
        "ShepherdAvailabilityBudgetBurn",
        "ShepherdLatencyBudgetBurn",
        "ShepherdTTFTBudgetBurn",
    }
    page = burn[0]
    assert page["labels"] == {
        "severity": "critical",
        "long": "1h",
        "short": "5m",
        "slo_window": "30d",
        "exhaustion": "2d2h",
    }
    assert page["for"] == "2m"
    assert '{window="1h"} > 14.4' in page["expr"].replace('sli="availability", slo_window="30d", ', "")
    assert "shepherd:sli_events:rate1h" in page["expr"]
    assert "* 3600" in page["expr"]
    assert "shepherd_slo_min_events" in page["expr"]
    for alert in burn:
        for number in re.findall(r"[<>]=? ([0-9.]+)", alert["expr"]):
            assert number == fmt_number(float(number)), number


@pytest.mark.parametrize(
    ("value", "text"), [(14.4, "14.4"), (6.0, "6"), (0.1, "0.1"), (1 - 0.9, "0.1"), (0.0, "0")]
)
def test_fmt_number_has_no_float_noise(value: float, text: str) -> None:
    assert fmt_number(value) == text


def test_text_durations_come_from_the_same_constant_as_for() -> None:
    config = RuleConfig(circuit_open_for=timedelta(minutes=7), fallback_ratio_threshold=0.25)
    alerts = {a["alert"]: a for a in _alerts(rule_groups(["30d"], config))}
    circuit = alerts["ShepherdCircuitOpen"]
    assert circuit["for"] == "7m"
    assert "7m" in circuit["annotations"]["summary"]
    assert "7m" in circuit["annotations"]["description"]
    fallback = alerts["ShepherdLLMFallbackRateHigh"]
    assert "> 0.25" in fallback["expr"]
    assert "25%" in fallback["annotations"]["summary"]
    nodata = next(a for a in _alerts(rule_groups(["30d"])) if a["alert"] == "ShepherdSLONoData")
    assert nodata["for"] == "10m"
    assert "15m" in nodata["annotations"]["summary"]


def test_runbook_base_url_is_configurable_in_one_place() -> None:
    config = RuleConfig(runbook_base_url="https://runbooks.example.com/shepherd/")
    for alert in _alerts(rule_groups(["30d"], config) + operator_rule_groups(config)):
        assert (
            alert["annotations"]["runbook_url"]
            == f"https://runbooks.example.com/shepherd/{alert['alert']}.md"
        )


def test_short_slo_window_for_tests_gets_its_own_scaled_group() -> None:
    config = RuleConfig(scrape_interval=timedelta(seconds=1), evaluation_interval=timedelta(seconds=1))
    groups = {g["name"]: g for g in rule_groups(["10m"], config)}
    assert groups["shepherd-slo-10m"]["interval"] == "1s"
    steps = groups["shepherd-slo-10m-steps"]
    assert steps["interval"] == "4s"  # the budget step, floored at 4 scrapes
    assert steps["rules"][0]["expr"].startswith("shepherd:sli_errors:rate4s\n")
    records = [r for r in groups["shepherd-slo-10m"]["rules"] if "record" in r]
    windows = {r["labels"]["window"] for r in records if r["record"] == "shepherd:slo_burn_rate"}
    assert windows == {"4s", "5s", "20s", "1m"}
    ratio = next(r["expr"] for r in records if r["record"] == "shepherd:slo_error_ratio")
    assert 'sum_over_time(shepherd:slo_errors:step_rate{slo_window="10m"}[10m])' in ratio


def test_latency_rules_join_the_exported_threshold_bucket_by_le() -> None:
    sli = {
        (r["record"], r["labels"]["sli"]): r["expr"]
        for r in rule_groups(["30d"])[0]["rules"]
        if "labels" in r
    }
    latency = sli[("shepherd:sli_errors:rate5m", "latency")]
    assert "and on (namespace, agentdeployment, le)" in latency
    assert 'shepherd_slo_latency_threshold_bucket{sli="latency"}' in latency
    ttft = sli[("shepherd:sli_errors:rate5m", "ttft")]
    assert 'shepherd_slo_latency_threshold_bucket{sli="ttft"}' in ttft
    assert "agent_ttft_seconds_bucket" in ttft


def test_all_alert_names() -> None:
    assert rules.all_alert_names() == [
        "ShepherdAllCircuitsOpen",
        "ShepherdAvailabilityBudgetBurn",
        "ShepherdCircuitOpen",
        "ShepherdLLMFallbackRateHigh",
        "ShepherdLatencyBudgetBurn",
        "ShepherdOperatorDown",
        "ShepherdPrometheusUnreachable",
        "ShepherdReconcileErrors",
        "ShepherdRedisMemoryHigh",
        "ShepherdSLONoData",
        "ShepherdSpendBudgetBurn",
        "ShepherdTTFTBudgetBurn",
    ]


def test_cli_writes_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--out-dir", str(tmp_path), "--slo-window", "10m", "--scrape-interval", "1s"]
    assert main([*args, "--check"]) == 1
    assert main(args) == 0
    assert main([*args, "--check"]) == 0
    assert "shepherd-slo-10m" in (tmp_path / "shepherd-rules.yaml").read_text()
    (tmp_path / "shepherd-rules.yaml").write_text("edited\n")
    assert main([*args, "--check"]) == 1
    assert "stale generated files" in capsys.readouterr().err


def test_benchmark_per_resource_set_grows_with_n_and_the_fleet_set_does_not() -> None:
    from bench.slo_rules import fleet_rule_groups, per_resource_rule_groups, rule_count

    assert rule_count(per_resource_rule_groups(10)) == 10 * rule_count(per_resource_rule_groups(1))
    assert rule_count(per_resource_rule_groups(1)) == 2 * (7 + 1 + 4)  # 2 SLIs: 7 windows, full, 4 alerts
    assert fleet_rule_groups() == rule_groups(["30d"])


def test_availability_counts_runs_and_only_refused_run_requests() -> None:
    sli = {
        (r["record"], r["labels"]["sli"]): r["expr"]
        for r in rule_groups(["30d"])[0]["rules"]
        if "labels" in r
    }
    events = sli[("shepherd:sli_events:rate5m", "availability")]
    errors = sli[("shepherd:sli_errors:rate5m", "availability")]
    assert 'agent_runs_total{outcome=~"success|interrupted|error|timeout"}' in events
    assert f'agent_http_requests_total{{route!~"{rules.RUN_ROUTES}"}}' in events
    assert f'agent_http_requests_total{{route=~"{rules.RUN_ROUTES}", code=~"5.."}}' in events
    assert 'agent_runs_total{outcome=~"error|timeout"}' in errors
    assert "cancelled" not in events + errors
    assert "refused" not in events + errors
    latency = sli[("shepherd:sli_events:rate5m", "latency")]
    assert "agent_run_duration_seconds_count" in latency
    assert "agent_http" not in latency


@pytest.mark.parametrize(
    ("route", "carries_a_run"),
    [
        ("/runs", True),
        ("/runs/wait", True),
        ("/runs/stream", True),
        ("/runs/batch", True),
        ("/threads/{thread_id}/runs", True),
        ("/threads/{thread_id}/runs/wait", True),
        ("/threads/{thread_id}/runs/stream", True),
        ("/threads/{thread_id}/runs/{run_id}/join", True),
        ("/threads/{thread_id}/runs/{run_id}/stream", True),
        ("/threads/{thread_id}/runs/{run_id}/cancel", False),
        ("/threads/{thread_id}/runs/{run_id}", False),
        ("/runs/crons", False),
        ("/threads/{thread_id}", False),
        ("/assistants/search", False),
    ],
)
def test_run_routes(route: str, carries_a_run: bool) -> None:
    assert bool(re.fullmatch(rules.RUN_ROUTES, route)) is carries_a_run  # Prometheus anchors =~


def test_the_service_and_the_rules_agree_on_the_routes_that_start_runs() -> None:
    from agent_service.api.usage import RUN_STARTING_ROUTE
    from agent_service.app import create_app
    from agent_service.settings import Settings

    app = create_app(Settings())
    posts = {path for path, operations in app.openapi()["paths"].items() if "post" in operations}
    starting = {p for p in posts if RUN_STARTING_ROUTE.match(p)}
    assert starting == {p for p in posts if re.fullmatch(rules.RUN_CREATE_ROUTES, p)}
    assert starting >= {"/runs", "/runs/wait", "/runs/stream", "/threads/{thread_id}/runs/wait"}
