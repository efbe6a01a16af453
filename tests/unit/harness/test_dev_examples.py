"""make dev applies examples/ with Claude's models pointed at the fake server, nothing else changed."""

from __future__ import annotations

import yaml

from tests.harness.dev import EXAMPLES, examples


def test_claude_examples_reach_the_fake_server_and_the_rest_is_applied_as_written() -> None:
    applied = {d["metadata"]["name"]: d for d in yaml.safe_load_all(examples("http://127.0.0.1:9"))}
    written = {
        d["metadata"]["name"]: d
        for p in EXAMPLES.glob("*.yaml")
        for d in yaml.safe_load_all(p.read_text())
        if d
    }
    assert set(applied) == set(written)
    for name, doc in written.items():
        model = doc["spec"].get("model") or {}
        if model.get("provider") == "anthropic":
            model["baseUrl"] = "http://127.0.0.1:9"
        assert applied[name] == doc, name
    assert applied["quick"]["spec"]["model"]["baseUrl"] == "http://127.0.0.1:9"
    assert "baseUrl" not in applied["basic"]["spec"]["model"]
