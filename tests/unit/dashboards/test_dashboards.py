"""The committed boards are fresh, typed (Grafana's schema via grafana-foundation-sdk), stable and
query only metrics that exist; every query parses with promtool."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from agent_service.observability import metrics as service_metrics
from grafana_foundation_sdk.cog import runtime
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import prometheus as pm
from grafana_foundation_sdk.models.dashboard import Dashboard
from prometheus_client.metrics import MetricWrapperBase
from shepherd.slo import objectives
from shepherd.slo.generate import RULES_FILE

import dashboards
from dashboards import build

REPO = Path(__file__).resolve().parents[3]
BOARDS = sorted(build.BOARDS)
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


#: The metrics contract of DESIGN.md (service), plus what the operator exports.
def _service_metrics() -> set[str]:
    """Every series the agent service exports, read from its metric objects (the contract's source)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    names = set()
    for collector in vars(service_metrics).values():
        if isinstance(collector, MetricWrapperBase):
            for family in collector.describe():
                names |= {family.name + suffix for suffix in suffixes[family.type]}
    return names


SERVICE_METRICS = _service_metrics()
OPERATOR_METRICS = {
    "shepherd_reconcile_total",
    "shepherd_reconcile_errors_total",
    "shepherd_prometheus_up",
    "shepherd_agentdeployment_freeze_level",
}
PROMQL_WORDS = {
    "sum", "max", "min", "by", "rate", "increase", "histogram_quantile", "and", "on", "or", "bool",
    "sum_over_time",
    "vector", "le", "namespace", "agentdeployment", "sli", "code", "model", "outcome", "kind", "scope",
    "circuit", "step", "action", "role", "window", "slo_window", "reason", "period", "route", "method",
}  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _sdk_plugins() -> None:
    register_default_plugins()


def _board(name: str) -> dict:
    return json.loads((REPO / "dashboards" / name).read_text())


def test_committed_boards_are_fresh():
    assert build.main(["--check"]) == 0, "stale boards: run `python -m dashboards.build`"


def test_check_mode_detects_a_stale_board(tmp_path):
    assert build.main(["--out-dir", str(tmp_path)]) == 0
    assert build.main(["--check", "--out-dir", str(tmp_path)]) == 0
    (tmp_path / BOARDS[0]).write_text("{}\n")
    assert build.main(["--check", "--out-dir", str(tmp_path)]) == 1


@pytest.mark.parametrize("name", BOARDS)
def test_board_round_trips_through_the_sdk_types(name):
    """Decoding with the SDK's typed models (panel options per panel type, Prometheus queries) and
    encoding again loses nothing: every field is one Grafana's schema knows."""
    board = _board(name)
    decoded = Dashboard.from_json(board)
    assert json.loads(json.dumps(decoded.to_json(), default=lambda o: o.to_json())) == board
    for panel in decoded.panels or []:
        if panel.type_val == "row":
            continue
        assert runtime.panelcfg_config(panel.type_val) is not None, f"unknown panel type {panel.type_val}"
        assert panel.targets, f"{panel.title} has no query"
        assert all(isinstance(t, pm.Dataquery) for t in panel.targets), panel.title


@pytest.mark.parametrize("name", BOARDS)
def test_uid_variables_and_note(name):
    board = _board(name)
    assert board["uid"] == hashlib.md5(name.encode()).hexdigest()
    assert "DO NOT EDIT" in board["description"]
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource", "namespace", "agentdeployment"]
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"]), "panel ids must be unique"
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel.get("description"), f"{panel['title']} has no description"
        for target in panel["targets"]:
            assert "$namespace" in target["expr"] or "shepherd_prometheus_up" in target["expr"], panel[
                "title"
            ]


def test_per_deployment_board_covers_the_issue():
    titles = {p["title"] for p in _board("shepherd-agentdeployment.json")["panels"]}
    for wanted in (
        "Availability SLI vs objective",
        "Latency SLI vs objective",
        "Error budget burndown",
        "Burn rate per window",
        "Requests by code",
        "Request latency",
        "Time to first token",
        "LLM calls by outcome and model",
        "Fallback usage",
        "Circuit state",
        "Tokens",
        "Cost per hour",
        "Rate-limited and budget-refused requests",
        "Freeze",
    ):
        assert wanted in titles
    annotations = _board("shepherd-agentdeployment.json")["annotations"]["list"]
    assert any("freeze" in a["expr"] for a in annotations)


def _known_series() -> set[str]:
    rules = yaml.safe_load((REPO / "alerts" / RULES_FILE).read_text())
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    return SERVICE_METRICS | OPERATOR_METRICS | set(objectives._METRICS) | recorded


def test_queries_use_only_known_series():
    known = _known_series()
    for query in dashboards.queries():
        stripped = re.sub(r'"[^"]*"', '""', query.expr)  # label values
        stripped = re.sub(r"\[[^\]]*\]", "", stripped)  # ranges
        names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", stripped)) - PROMQL_WORDS
        unknown = {n for n in names if not n.isdigit()} - known
        assert not unknown, f"{query.board} / {query.panel}: unknown series {unknown}"


def test_queries_substitute_every_variable():
    found = dashboards.queries()
    assert len(found) > 30
    for query in found:
        assert "$" not in query.expr, query
    narrowed = dashboards.queries({"namespace": "team-a", "agentdeployment": "demo"})
    assert all('namespace=~"team-a"' in q.expr for q in narrowed if "namespace=~" in q.expr)


def test_every_query_parses_with_promtool(tmp_path):
    rules = [
        {"record": f"dashboard:query_{index}", "expr": query.expr}
        for index, query in enumerate(dashboards.queries())
    ]
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
