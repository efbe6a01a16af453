"""promtool on the committed rule files: syntax (check rules) and behaviour (test rules).

promtool is the real binary from Debian's `prometheus` package; a missing binary fails the test
rather than skipping it, since the alerts would then ship untested.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from shepherd.slo.rules import all_alert_names

ALERTS = Path(__file__).resolve().parents[3] / "alerts"
RULE_FILES = sorted(ALERTS.glob("*.yaml"))
TEST_FILES = sorted((ALERTS / "tests").glob("*.yaml"))


@pytest.fixture(scope="module")
def promtool() -> str:
    path = os.environ.get("PROMTOOL") or shutil.which("promtool")
    assert path, "promtool not found: install Debian's prometheus package (or set PROMTOOL)"
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(promtool: str, path: Path) -> None:
    if path.name.endswith("prometheusrule.yaml"):
        # The PrometheusRule form: check its spec.groups as a plain rule file.
        spec = yaml.safe_load(path.read_text())["spec"]
        plain = path.with_name(f".{path.stem}.check.yaml")
        plain.write_text(yaml.safe_dump(spec))
        try:
            result = _run(promtool, "check", "rules", str(plain))
        finally:
            plain.unlink()
    else:
        result = _run(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_test_rules(promtool: str, path: Path) -> None:
    result = _run(promtool, "test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_short_slo_window_behaves_like_30d(promtool: str, tmp_path: Path) -> None:
    """The e2e tests run a 10m SLO scraped every second: generate that rule set and test it."""
    from shepherd.slo.__main__ import main

    args = ["--slo-window", "10m", "--scrape-interval", "1s", "--evaluation-interval", "1s"]
    assert main([*args, "--out-dir", str(tmp_path)]) == 0
    test = tmp_path / "10m.yaml"
    test.write_text((ALERTS / "tests" / "short-window" / "10m.yaml").read_text())
    assert _run(promtool, "check", "rules", str(tmp_path / "shepherd-rules.yaml")).returncode == 0
    result = _run(promtool, "test", "rules", str(test))
    assert result.returncode == 0, result.stdout + result.stderr


def _cases() -> dict[str, dict[str, int]]:
    """alertname -> {"fires": n, "silent": n} over every promtool test case."""
    cases: dict[str, dict[str, int]] = {}
    for path in TEST_FILES:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                kind = "fires" if case.get("exp_alerts") else "silent"
                cases.setdefault(case["alertname"], {"fires": 0, "silent": 0})[kind] += 1
            for case in test.get("promql_expr_test", []):
                match = re.search(r'ALERTS\{alertname="(\w+)"', case["expr"])
                if match:
                    kind = "fires" if case.get("exp_samples") else "silent"
                    cases.setdefault(match.group(1), {"fires": 0, "silent": 0})[kind] += 1
    return cases


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    cases = _cases()
    for name in all_alert_names():
        assert cases.get(name, {}).get("fires"), f"{name}: no promtool case where it fires"
        assert cases.get(name, {}).get("silent"), f"{name}: no promtool case where it stays silent"
    assert set(cases) <= set(all_alert_names()), "tests for alerts that no longer exist"
