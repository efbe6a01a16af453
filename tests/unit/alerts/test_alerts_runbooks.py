"""Every alert has a runbook, every runbook has an alert, and each runbook is complete."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from shepherd.slo.rules import DEFAULT_RUNBOOK_BASE_URL, all_alert_names

ROOT = Path(__file__).resolve().parents[3]
RUNBOOKS = ROOT / "runbooks"
SECTIONS = ("Meaning", "Impact", "Diagnosis", "Mitigation", "Freeze policy")
SERVICE_METRICS = re.compile(r"\b(agent_[a-z_]+|shepherd_[a-z_]+|shepherd:[a-z_:0-9]+)")


def _shipped_alerts() -> dict[str, set[str]]:
    """alertname -> runbook_urls, read from the committed rule files (what users get)."""
    urls: dict[str, set[str]] = {}
    for name in ("shepherd-rules.yaml", "shepherd-operator-rules.yaml"):
        for group in yaml.safe_load((ROOT / "alerts" / name).read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    urls.setdefault(rule["alert"], set()).add(rule["annotations"]["runbook_url"])
    return urls


def test_committed_files_ship_every_alert() -> None:
    assert sorted(_shipped_alerts()) == all_alert_names()


def test_every_runbook_url_resolves_to_a_file_in_the_repo() -> None:
    for alert, urls in _shipped_alerts().items():
        assert urls == {f"{DEFAULT_RUNBOOK_BASE_URL}/{alert}.md"}, alert
        (url,) = urls
        relative = url.removeprefix("https://github.com/shepherd-dev/shepherd/blob/main/")
        assert (ROOT / relative).is_file(), f"{alert}: {relative} missing"


def test_every_runbook_belongs_to_an_alert() -> None:
    assert sorted(p.stem for p in RUNBOOKS.glob("*.md")) == all_alert_names()


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {title.strip(): body.strip() for title, body in zip(parts[1::2], parts[2::2], strict=True)}


@pytest.mark.parametrize("alert", all_alert_names())
def test_runbook_is_complete(alert: str) -> None:
    text = (RUNBOOKS / f"{alert}.md").read_text()
    assert text.startswith(f"# {alert}\n")
    sections = _sections(text)
    for section in SECTIONS:
        assert len(sections.get(section, "")) > 80, f"{alert}: section {section!r} missing or empty"
    diagnosis = sections["Diagnosis"]
    assert "kubectl " in diagnosis, f"{alert}: Diagnosis needs concrete kubectl commands"
    assert "```promql" in diagnosis, f"{alert}: Diagnosis needs PromQL"
    freeze = sections["Freeze policy"]
    assert "shepherd.dev/freeze-override" in freeze, alert
    assert "FreezeNonCritical" in freeze or "FreezeAll" in freeze or "freeze" in freeze.lower(), alert


def test_runbooks_use_metric_names_that_exist() -> None:
    """A renamed metric must not leave runbooks querying nothing."""
    known = {
        "agent_http_requests_total", "agent_http_request_duration_seconds", "agent_ttft_seconds",
        "agent_inflight_requests", "agent_llm_requests_total", "agent_llm_request_duration_seconds",
        "agent_llm_tokens_total", "agent_llm_cost_usd_total", "agent_circuit_state",
        "agent_rate_limited_total", "agent_token_budget_exhausted_total",
        "agent_runs_total", "agent_run_duration_seconds", "agent_run_queue_seconds",
        "agent_runs_pending", "agent_runs_running", "agent_run_recoveries_total",
        "agent_tool_calls_total",
        "agent_tool_duration_seconds", "agent_llm_cache_total",
        "shepherd_reconcile_total", "shepherd_reconcile_errors_total", "shepherd_prometheus_up",
    }  # fmt: skip
    from shepherd.slo.objectives import _METRICS

    known |= set(_METRICS)
    rules_text = (ROOT / "alerts" / "shepherd-rules.yaml").read_text()
    for path in sorted(RUNBOOKS.glob("*.md")):
        for name in set(SERVICE_METRICS.findall(path.read_text())):
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            if name.startswith("shepherd:"):
                assert f"record: {name}" in rules_text, f"{path.name}: unknown recording rule {name}"
            elif not name.endswith("_"):
                assert base in known or name in known, f"{path.name}: unknown metric {name}"
